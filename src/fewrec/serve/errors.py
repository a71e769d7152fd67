"""Errors of the HTTP service: each carries its HTTP status, the field at fault and a fix."""

from __future__ import annotations

from fewrec.errors import FewrecError, with_fix


class ServeError(FewrecError):
    """A request the service refuses (rendered as a JSON error, never a 500)."""

    status_code = 400
    kind = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, fix: str | None = None):
        super().__init__(with_fix(message, fix))
        self.field = field
        self.fix = fix


class NotFoundError(ServeError):
    status_code = 404
    kind = "not_found"


class InvalidError(ServeError):
    status_code = 422
    kind = "invalid"


class UnauthorizedError(ServeError):
    status_code = 401
    kind = "unauthorized"


class ForbiddenError(ServeError):
    status_code = 403
    kind = "forbidden"


class UnavailableError(ServeError):
    status_code = 503
    kind = "unavailable"


class StoreFullError(ServeError):
    status_code = 507
    kind = "store_full"
