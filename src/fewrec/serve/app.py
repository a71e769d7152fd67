"""The HTTP API (FastAPI): health, items, users, feedback, recommendations, hot swap, web page.

Reads are open; writes need an API key in the ``X-API-Key`` header when keys are configured.
Every error is JSON ``{"error", "message", "field"}`` with a 4xx status naming the field at
fault; the body size is capped before it is read. OpenAPI docs: ``/docs`` (served offline)
and ``/openapi.json``.

Run it with `run_server` (or ``python -m fewrec.serve``); `create_app` gives the ASGI app.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, Request
from fastapi import Path as PathParam
from fastapi import Query as QueryParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import AfterValidator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fewrec.errors import FewrecError, with_fix
from fewrec.models.base import Recommender
from fewrec.models.saving import check_model_dir
from fewrec.serve import schemas as S
from fewrec.serve.engine import Engine, ExplorationConfig
from fewrec.serve.errors import ForbiddenError, InvalidError, ServeError, UnauthorizedError
from fewrec.serve.store import Store

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
PAGE_HEADERS = {
    # the page escapes what it shows (text nodes only); this is a second line should that slip
    # (it may still be framed, e.g. in a notebook's preview: it holds no key to act with)
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
}


class _PageFiles(StaticFiles):
    """The page's files with `PAGE_HEADERS` (``/static/index.html`` is the page too)."""

    async def get_response(self, path: str, scope: Any) -> Any:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


DEFAULT_MAX_BODY = 1 << 20
API_KEY_HEADER = "X-API-Key"

# an id may hold "/" but not end with one ("/items/50/" is no item "50/"; it was a redirect)
ID_PATH_PATTERN = (
    r"^([^\x00-\x20\x7f/\ufffd]|[^\x00-\x20\x7f\ufffd][^\x00-\x1f\x7f\ufffd]*[^\x00-\x20\x7f/\ufffd])$"
)
IdPath = Annotated[
    str, PathParam(min_length=1, max_length=S.MAX_ID, pattern=ID_PATH_PATTERN), AfterValidator(S.nfc)
]
ITEM_ROUTES = ("/similar",)
USER_ROUTES = ("/feedback", "/recommend")


def _writable(key: str, field: str, routes: tuple[str, ...]) -> str:
    """An id a write may create: not one a route after the id would shadow (PUT
    /users/u1/recommend created the user "u1/recommend", whom GET could never reach). Deletes
    take any id, so what training data or an older version stored can still be removed."""
    for suffix in routes:
        if key.endswith(suffix):
            raise InvalidError(
                f"ids ending in {suffix!r} are reserved for the {suffix[1:]} route", field=field
            )
    return key


FilterParam = Annotated[
    list[str] | None,
    QueryParam(
        max_length=S.MAX_FIELDS,
        description="field:value, repeatable; the same field twice means any of, e.g. genres:Comedy",
    ),
]


# ------------------------------------------------------------------------------------ errors
_UNION_TAGS = {"float", "int", "bool", "str", "constrained-str", "none"}


def _field(loc: Sequence[Any]) -> str:
    """``("body", "items", 3)`` -> ``"items[3]"``; path/query/header prefixes are dropped."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    # pydantic adds the member of a union it tried ("float", "list[...]") and "[key]": drop them
    parts = [p for p in parts if isinstance(p, int) or not (p in _UNION_TAGS or "[" in p)]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or str(loc[0] if loc else "body")


def _error(
    status: int,
    kind: str,
    message: str,
    field: str | None,
    errors: list | None = None,
    headers: dict[str, str] | None = None,
    location: str = "body",
) -> JSONResponse:
    # the engine's errors name one field: `errors` holds it too, as the docs promise ("one entry
    # per invalid field"; it was empty, so a client marking fields from it marked none)
    if errors is None and field:
        errors = [{"field": field, "location": location, "message": message}]
    body = S.ErrorBody(error=kind, message=message, field=field, errors=errors or [])
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for e in exc.errors():
        loc = tuple(e.get("loc", ()))
        if e.get("type") == "json_invalid":  # loc is ("body", character position)
            pos = loc[1] if len(loc) > 1 else "?"
            errors.append(
                {"field": "body", "location": "body", "message": f"invalid JSON at character {pos}"}
            )
            continue
        where = loc[0] if loc else "body"
        # (pydantic prefixes a validator's own message: "Value error, a rating event needs a value")
        message = e.get("msg", "").removeprefix("Value error, ")
        pattern = (e.get("ctx") or {}).get("pattern")
        if e.get("type") == "string_pattern_mismatch" and pattern in (S.ID_PATTERN, ID_PATH_PATTERN):
            message = (
                "an id holds no control characters or undecodable bytes (U+FFFD), nor spaces at its "
                "start or end"
            )
            message += " (nor ends in '/')" if where == "path" else ""
        if e.get("type") == "string_pattern_mismatch" and pattern == S.FIELD_KEY_PATTERN:
            # (it read "String should match pattern '^[A-Za-z_][A-Za-z0-9_\-]*$'")
            message = (
                f"a field name is letters, digits, '_' and '-', starting with a letter or '_', not "
                f"{e.get('input')!r} (e.g. favourite_colour)"
            )
        given = e.get("input")
        if e.get("type") == "string_type" and isinstance(given, int | float) and not isinstance(given, bool):
            message += f' (send it as text: "{given}")'  # ({"user": 196}: ids are text, MovieLens' too)
        if e.get("type") == "extra_forbidden" and len(loc) == 2 and loc[0] == "body":
            message += _body_keys_fix(request, str(loc[1]))  # (query parameters named theirs)
        if where == "path" and e.get("type") == "string_too_short":  # ("/users" redirected to "/users/")
            kind = "user" if "user" in str(loc[-1]) else "item"
            lists = "GET /items lists the items" if kind == "item" else "no route lists the users"
            message = f"the path names no {kind} id: add it, e.g. /{kind}s/42 ({lists})"
        if loc == ("body",) and e.get("type") == "missing":
            message = "the request has no body (send a JSON object; {} asks with nothing given)"
        if loc == ("body",) and e.get("type") in ("list_type", "model_attributes_type", "dict_type"):
            message += _body_shape_hint(request, e.get("input"))  # (POST /items and /feedback/batch differ)
        json_body = "json" in request.headers.get("content-type", "").lower()
        if loc == ("body",) and not json_body and e.get("type") in ("model_attributes_type", "dict_type"):
            message += " (send the body as JSON, with the header Content-Type: application/json)"
        errors.append({"field": _field(loc), "location": where, "message": message})
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    # a value of a union (a field of an item: number, text or list) fails each member: pydantic's
    # first complaint ("Input should be a valid number") hid the cause ("at most 64 items")
    raw = [e for e in exc.errors() if e.get("type") != "json_invalid"]
    if len(raw) == len(errors) and len(raw) > 1:
        causes = [i for i, e in enumerate(raw) if not _is_type_mismatch(e.get("type", ""))]
        if causes:
            first = errors[causes[0]]
        elif raw[0].get("input", ...) is None:  # null for a value that takes none
            first = {**first, "message": "must not be null: give a value, or leave the key out"}
        elif len({errors[i]["field"] for i in range(len(raw))}) == 1 and (kinds := _union_kinds(raw)):
            # (each member's complaint: "Input should be a valid number" for a list of lists)
            first = {**first, "message": f"a value of the wrong type: give {kinds}"}
    return _error(422, "invalid", f"{first['field']}: {first['message']}", first["field"], errors)


def _body_fields(request: Request) -> dict[str, Any] | None:
    """The fields of the route's JSON body model; None where the body is no model (a list)."""
    body_field = getattr(request.scope.get("route"), "body_field", None)
    kind = getattr(getattr(body_field, "field_info", None), "annotation", None)
    return getattr(kind, "model_fields", None)


def _body_keys_fix(request: Request, key: str) -> str:
    """The keys the route's JSON body takes, for a key it does not (unknown query parameters
    named theirs; an unknown key said only "Extra inputs are not permitted")."""
    fields = _body_fields(request)
    if not fields:
        return ""
    names = [f.alias or name for name, f in fields.items()]
    title = " (titles are no key: GET /items?q=<title> finds an item's id)" if "title" in key else ""
    return f". Fix: use {', '.join(names)}{title}"


def _union_kinds(raw: list[dict]) -> str:
    """What a union's members take, in words, from the member tags pydantic puts in each
    error's location ("float", "str", "list[...]"); "" when the errors name none."""
    words = {"float": "a number", "int": "a number", "bool": "true or false", "str": "text"}
    words["constrained-str"] = "text"
    tags = [str(p) for e in raw for p in e.get("loc", ()) if isinstance(p, str)]
    kinds = list(dict.fromkeys(words[t] for t in tags if t in words))
    if any(t.startswith("list[") for t in tags):
        kinds.append("a list of them" if kinds else "a list")
    if len(kinds) < 2:
        return ""
    return ", ".join(kinds[:-1]) + " or " + kinds[-1]


def _body_shape_hint(request: Request, given: Any) -> str:
    """How to shape a body sent as a list where an object goes, or as an object where a list
    goes: ``POST /items`` takes a list, ``POST /feedback/batch`` ``{"events": [...]}``."""
    fields = _body_fields(request)
    if isinstance(given, list) and fields:
        lists = [n for n, f in fields.items() if "list" in str(f.annotation).lower()]
        if len(lists) == 1:
            return f' (send an object: {{"{lists[0]}": [...]}})'
    if isinstance(given, dict) and fields is None and len(given) == 1:
        (key,) = given
        if isinstance(given[key], list):
            return f' (send the list itself, not {{"{key}": [...]}})'
    return ""


def _is_type_mismatch(kind: str) -> bool:
    """A pydantic error of a value of the wrong type (each member of a union gives one)."""
    return kind.endswith(("_type", "_parsing")) or kind in ("int_from_float", "literal_error")


async def _serve_error(request: Request, exc: ServeError) -> JSONResponse:
    # where the field is: a path's id (user_id), a query parameter (filter), else the body
    field = exc.field
    if field and field.startswith("filters.") and "filter" in request.query_params:
        field = "filter"  # (?filter=colour:red named `filters.colour`, the body's key)
    if field == "user" and "user_id" in request.path_params:
        field = "user_id"  # (GET /users/nobody/recommend named the body's `user`)
    where = "path" if field in request.path_params else "query" if field in request.query_params else "body"
    if field == API_KEY_HEADER:
        where = "header"
    return _error(exc.status_code, exc.kind, str(exc), field, location=where)


async def _fewrec_error(request: Request, exc: FewrecError) -> JSONResponse:
    return _error(422, "invalid", str(exc), None)


def _unparsed_body(cause: BaseException | None) -> str | None:
    """Why FastAPI could not parse a JSON body (it says only "There was an error parsing the
    body", and keeps the error as the cause): bytes that are not UTF-8, JSON nested too deeply,
    a number of more digits than Python converts."""
    if isinstance(cause, UnicodeDecodeError):
        return with_fix("the body is not UTF-8 text", "send the JSON encoded as UTF-8")
    if isinstance(cause, RecursionError):
        return with_fix("the JSON body is nested too deeply", "send the body /docs shows for this route")
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return with_fix("a number in the body has thousands of digits", "send numbers as /docs shows them")
    return None


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    kinds = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
    field = "body" if exc.status_code in (400, 413) else None
    message = _unparsed_body(exc.__cause__) if exc.status_code == 400 else None
    headers = getattr(exc, "headers", None)  # (a 405's Allow: the methods the route takes)
    if exc.status_code == 405 and headers and headers.get("Allow"):
        message = with_fix(str(exc.detail), f"use {headers['Allow']}")
    return _error(
        exc.status_code,
        kinds.get(exc.status_code, "http_error"),
        message or str(exc.detail),
        field,
        headers=headers,
    )


class CatchUnexpected:
    """ASGI middleware: an unexpected error is logged and answered with a 500 body. (Starlette's
    own handler of `Exception` re-raises it after answering, and uvicorn then closed the
    connection, so a keep-alive client's next request failed with a reset.)"""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            if started:  # part of an answer went out: nothing to add to it
                raise
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            await _error(500, "internal", "internal error (logged on the server)", None)(scope, receive, send)


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
"""The host names a service bound to a loopback address answers to by default."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) names this machine only."""
    import ipaddress

    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """``Host`` header -> the lower-case name without its port (``[::1]:8000`` -> ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class HostCheck:
    """ASGI middleware: refuse requests whose ``Host`` header names none of ``hosts``.

    A service on 127.0.0.1 is reachable by any web page the user opens, through DNS rebinding
    (a page's own host name made to resolve to 127.0.0.1): its requests name that host, not
    localhost, so checking the name stops them reading or writing the service's data."""

    def __init__(self, app: ASGIApp, hosts: Sequence[str]):
        self.app = app
        self.hosts = {_host_name(h) for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":  # (the service has no websockets)
            header = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if _host_name(header) not in self.hosts:
                message = with_fix(
                    f"this service answers to the host names {sorted(self.hosts)}, not {header!r}",
                    "open it as http://localhost:PORT, or start it with --allow-host NAME for the "
                    "name a proxy in front of it passes on",
                )
                await _error(400, "bad_host", message, "Host", location="header")(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodyLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` (by Content-Length, or while streaming)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                await _error(
                    400, "bad_request", "invalid Content-Length header", "Content-Length", location="header"
                )(scope, receive, send)
                return
            if too_big:
                resp = _error(413, "payload_too_large", str(_BodyTooLarge(self.max_bytes).detail), "body")
                await resp(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)


# ------------------------------------------------------------------------------------ app
def _keys_from_env() -> list[str]:
    return [k.strip() for k in os.environ.get("FEWREC_API_KEYS", "").split(",") if k.strip()]


def _parse_filters(values: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pos, raw in enumerate(values or []):
        name, sep, value = raw.partition(":")
        if not sep or not name or not value:
            raise InvalidError(
                f"filter {raw!r} is not field:value", field=f"filter[{pos}]", fix="e.g. genres:Comedy"
            )
        if name in out:
            prev = out[name]
            out[name] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[name] = value
    return out


def create_app(
    model: Recommender | str | Path | None = None,
    store_path: str | Path = "fewrec.db",
    *,
    api_keys: Sequence[str] | None = None,
    exploration: ExplorationConfig | None = None,
    index: str = "auto",
    max_body_bytes: int = DEFAULT_MAX_BODY,
    model_root: str | Path | None = None,
    warm_up: bool = True,
    engine: Engine | None = None,
    max_store_mb: float | None = None,
) -> FastAPI:
    """Build the service.

    Args:
        model: a fitted model or a saved model directory (not needed with ``engine``).
        store_path: the SQLite store file (created if missing).
        api_keys: keys accepted for writes; None reads ``$FEWREC_API_KEYS`` (comma-separated);
            empty: writes are open (a warning is logged).
        exploration: exploration policy for new users.
        index: vector index kind for similar items.
        max_body_bytes: the largest request body accepted.
        model_root: hot swap loads only model directories inside it.
        warm_up: warm the model and text encoder in the background at start-up (readiness
            waits for it); False: ready at once.
        engine: an existing engine (tests); overrides model, store_path, exploration, index and
            model_root.
        max_store_mb: refuse writes (HTTP 507) once the store's file and log hold this many
            megabytes; None: no limit. Reads and deletes go on.
    """
    ok = isinstance(max_store_mb, int | float) and not isinstance(max_store_mb, bool) and max_store_mb > 0
    if max_store_mb is not None and not ok:  # (checked before the model loads, for the CLIs too)
        raise FewrecError(f"max_store_mb (--max-store-mb) must be a number above 0, got {max_store_mb!r}")
    if api_keys is not None and any(not isinstance(k, str) or not k.strip() for k in api_keys):
        # (--api-key "$KEY" with KEY unset: a key no request can send, so every write was a 401)
        raise FewrecError(
            with_fix(
                'an API key is empty (--api-key "$KEY" with KEY unset?)',
                "give each key a value, or leave --api-key out (FEWREC_API_KEYS is read then)",
            )
        )
    if engine is None:
        if model is None:
            raise FewrecError("create_app needs a model (a fitted Recommender or a saved model directory)")
        if not isinstance(model, Recommender):  # a wrong model path creates no store file
            check_model_dir(Path(model).expanduser())
        engine = _engine_or_no_store(store_path, model, exploration, index, model_root)
    if max_store_mb is not None:
        engine.max_store_bytes = int(max_store_mb * 1e6)
    keys = list(api_keys) if api_keys is not None else _keys_from_env()
    if not keys:
        log.warning("no API keys configured: anyone who can reach the service can write to it")
    if not warm_up:
        engine.warm = True

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not engine.warm:
            threading.Thread(target=_warm, args=(engine,), name="fewrec-warm-up", daemon=True).start()
        yield
        engine.store.checkpoint(wait=5.0)  # the store file alone then holds every write (not its -wal)

    # FastAPIOffline serves /docs and /redoc from files in its package: FastAPI's own pages load
    # their scripts from a CDN, which a machine without internet cannot reach (a blank page)
    app = FastAPIOffline(
        title="fewrec",
        summary="Recommendations from very little data: text, few-shot users, explanations.",
        version=_version(),
        lifespan=lifespan,
        dependencies=[Depends(_known_query_parameters)],
        responses={  # every error has the same body (ErrorBody), not FastAPI's default one
            401: {"model": S.ErrorBody, "description": "A write without the X-API-Key header."},
            403: {"model": S.ErrorBody, "description": "A write with a key that is not accepted."},
            404: {"model": S.ErrorBody, "description": "No such item, user or model folder."},
            422: {"model": S.ErrorBody, "description": "Invalid request; `field` names what is wrong."},
            503: {
                "model": S.ErrorBody,
                "description": "The model is not ready or cannot take the change now.",
            },
            507: {"model": S.ErrorBody, "description": "A write to a full store (`--max-store-mb`)."},
        },
    )
    app.state.engine = engine
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    # (Starlette types a handler as taking any Exception, though it is only called with the
    # class it is registered for: starlette issue #2417)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(ServeError, _serve_error)  # type: ignore[arg-type]
    app.add_exception_handler(FewrecError, _fewrec_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_middleware(CatchUnexpected)  # around BodyLimit and the routes (`serve` adds HostCheck outside)

    def require_key(x_api_key: Annotated[str | None, Header(alias=API_KEY_HEADER)] = None) -> None:
        if not keys:
            return
        if not x_api_key:
            raise UnauthorizedError(
                f"writes need an API key in the {API_KEY_HEADER} header", field=API_KEY_HEADER
            )
        if not any(hmac.compare_digest(x_api_key.encode(), k.encode()) for k in keys):
            raise ForbiddenError("the API key is not valid", field=API_KEY_HEADER)

    write = [Depends(require_key)]
    _routes(app, engine, write)
    app.mount("/static", _PageFiles(directory=STATIC), name="static")
    return app


def _warm(engine: Engine) -> None:
    try:
        engine.warm_up()
    except Exception:  # readiness then stays false; the log says why
        log.exception("warm-up failed")


def _known_query_parameters(request: Request) -> None:
    """Refuse a query parameter the route does not take: a typo (``?explroe=false``) was
    ignored, so the request did what it did not ask for (JSON bodies refuse unknown keys)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or str(getattr(route, "path", "")).startswith("/health"):
        return  # a health probe may add a cache-busting parameter of its own
    known: set[str] = set()
    stack = [dependant]
    while stack:  # the route's own query parameters and its dependencies'
        d = stack.pop()
        known.update(p.alias for p in d.query_params)
        stack.extend(d.dependencies)
    unknown = [k for k in request.query_params if k not in known]
    if unknown:
        raise InvalidError(
            f"unknown query parameter {unknown[0]!r}",
            field=unknown[0],
            fix=f"use {', '.join(sorted(known))}" if known else "this route takes no query parameters",
        )


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("fewrec")
    except metadata.PackageNotFoundError:
        return "0"


def _routes(app: FastAPI, engine: Engine, write: list[Any]) -> None:
    """Register every route on ``app``."""

    # -------------------------------------------------------------- health and page
    @app.get("/health/live", response_model=S.Health, tags=["health"])
    def live() -> S.Health:
        """The process is up."""
        return S.Health(status="ok")

    @app.get(
        "/health/ready", response_model=S.Health, tags=["health"], responses={503: {"model": S.ErrorBody}}
    )
    def ready() -> Any:
        """A model is loaded and warmed up: the service can answer recommendations."""
        if not engine.warm:
            return _error(503, "unavailable", "warming up", None)
        info = engine.info()
        return S.Health(
            status="ready", detail={"model": info.model, "version": info.version, "items": info.items}
        )

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)  # (HEAD was a 405)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    # -------------------------------------------------------------- items
    # Ids may hold "/" (sent as %2F, which the server decodes before routing): the id routes take
    # the rest of the path, so each ".../{id}/similar"-style route is registered before the bare
    # one, which would otherwise take "x/similar" as an id.
    @app.get("/items", response_model=S.ItemList, tags=["items"])
    def list_items(
        offset: Annotated[int, QueryParam(ge=0)] = 0,
        limit: Annotated[int, QueryParam(ge=1, le=S.MAX_BATCH)] = 50,
        q: Annotated[
            str | None,
            QueryParam(max_length=200, description="an item id, or text in the title, text or text fields"),
        ] = None,
    ) -> S.ItemList:
        """The catalogue's items, the recommendable ones first, then those the model cannot
        score yet (``recommendable: false``); with ``q``, the item of that id, then those whose
        title contains it, then those whose text or text fields do."""
        return engine.list_items(offset, limit, q)

    @app.get("/items/{item_id:path}/similar", response_model=S.RecommendResponse, tags=["recommend"])
    def similar(
        item_id: IdPath,
        k: Annotated[int, QueryParam(ge=1, le=S.MAX_K)] = 10,
        filter: FilterParam = None,  # noqa: A002  (the public query parameter name)
        explain: bool = True,
    ) -> S.RecommendResponse:
        """Items most similar to this one."""
        opts = S.RecommendOptions(k=k, filters=_parse_filters(filter), explain=explain)
        return engine.similar(item_id, opts)

    @app.get("/items/{item_id:path}", response_model=S.ItemOut, tags=["items"])
    def get_item(item_id: IdPath) -> S.ItemOut:
        return engine.get_item(item_id)

    @app.put("/items/{item_id:path}", response_model=S.ItemOut, tags=["items"], dependencies=write)
    def put_item(item_id: IdPath, item: S.ItemIn) -> S.ItemOut:
        """Create or replace an item; a text item is recommendable when this returns."""
        return engine.put_items([(_writable(item_id, "item_id", ITEM_ROUTES), item)])[0]

    @app.post("/items", response_model=list[S.ItemOut], tags=["items"], dependencies=write)
    def post_items(
        items: Annotated[list[S.ItemWithId], Body(min_length=1, max_length=S.MAX_BATCH)],
    ) -> list[S.ItemOut]:
        """Create or replace many items at once."""
        return engine.put_items(
            [(_writable(it.id, f"items[{n}].id", ITEM_ROUTES), it) for n, it in enumerate(items)]
        )

    @app.delete("/items/{item_id:path}", status_code=204, tags=["items"], dependencies=write)
    def delete_item(item_id: IdPath) -> None:
        """Never recommend this item again (its feedback stays)."""
        engine.delete_item(item_id)

    # -------------------------------------------------------------- users
    @app.get("/users/{user_id:path}/feedback", response_model=list[S.FeedbackOut], tags=["users"])
    def user_feedback(
        user_id: IdPath, limit: Annotated[int, QueryParam(ge=1, le=10_000)] = 100
    ) -> list[S.FeedbackOut]:
        """The user's latest feedback events in the order they arrived (not by their timestamps)."""
        return engine.user_feedback(user_id, limit)

    @app.get("/users/{user_id:path}/recommend", response_model=S.RecommendResponse, tags=["recommend"])
    def recommend_user(
        user_id: IdPath,
        k: Annotated[int, QueryParam(ge=1, le=S.MAX_K)] = 10,
        exclude_seen: bool = True,
        explore: bool | None = None,
        explain: bool = True,
        filter: FilterParam = None,  # noqa: A002
        seed: Annotated[int | None, QueryParam(ge=0, le=2**32 - 1)] = None,
    ) -> S.RecommendResponse:
        """Recommendations for a known user (training history + stored feedback)."""
        req = S.RecommendRequest(
            user=user_id,
            k=k,
            exclude_seen=exclude_seen,
            explore=explore,
            explain=explain,
            filters=_parse_filters(filter),
            seed=seed,
        )
        return engine.recommend(req)

    @app.get("/users/{user_id:path}", response_model=S.UserOut, tags=["users"])
    def get_user(user_id: IdPath) -> S.UserOut:
        return engine.get_user(user_id)

    @app.put("/users/{user_id:path}", response_model=S.UserOut, tags=["users"], dependencies=write)
    def put_user(user_id: IdPath, user: S.UserIn) -> S.UserOut:
        """Create or replace a user's text and side info."""
        return engine.put_user(_writable(user_id, "user_id", USER_ROUTES), user)

    @app.delete("/users/{user_id:path}", response_model=S.UserDeleted, tags=["users"], dependencies=write)
    def delete_user(user_id: IdPath) -> S.UserDeleted:
        """Delete the user, all their feedback, and stop using the model's history of them."""
        return engine.delete_user(user_id)

    # -------------------------------------------------------------- feedback
    @app.post(
        "/feedback", response_model=S.FeedbackAck, status_code=201, tags=["feedback"], dependencies=write
    )
    def feedback(event: S.FeedbackIn) -> S.FeedbackAck:
        """Record one event; it is on disk, and shapes the next recommendation, when this returns."""
        _writable(event.user, "user", USER_ROUTES)  # it creates the user
        return engine.add_feedback([event])

    @app.post(
        "/feedback/batch",
        response_model=S.FeedbackAck,
        status_code=201,
        tags=["feedback"],
        dependencies=write,
    )
    def feedback_batch(batch: S.FeedbackBatch) -> S.FeedbackAck:
        """Record many events in one transaction."""
        for n, event in enumerate(batch.events):
            _writable(event.user, f"events[{n}].user", USER_ROUTES)
        return engine.add_feedback(batch.events)

    # -------------------------------------------------------------- recommend
    @app.post("/recommend", response_model=S.RecommendResponse, tags=["recommend"])
    def recommend(req: S.RecommendRequest) -> S.RecommendResponse:
        """Recommend for a known user and/or an anonymous session (items and/or free text)."""
        return engine.recommend(req)

    # -------------------------------------------------------------- admin
    @app.get("/admin/model", response_model=S.ModelInfo, tags=["admin"])
    def model_info() -> S.ModelInfo:
        return engine.info()

    @app.post("/admin/model", response_model=S.ModelInfo, tags=["admin"], dependencies=write)
    def swap_model(req: S.SwapRequest) -> S.ModelInfo:
        """Hot swap: load a saved model directory and serve it; requests never wait."""
        return engine.swap(req.path)


def _engine_or_no_store(
    store_path: str | Path,
    model: Recommender | str | Path,
    exploration: ExplorationConfig | None,
    index: str,
    model_root: str | Path | None,
) -> Engine:
    """The engine on a store at ``store_path``; when it cannot start (a damaged model), a store
    file it created is removed again (a failed start left an empty 53 KB store behind)."""
    path = Path(store_path).expanduser()
    created = not path.exists()
    store = Store(store_path)
    try:
        return Engine(store, model, exploration=exploration, index=index, model_root=model_root)
    except BaseException:
        store.close()
        if created:
            for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                leftover.unlink(missing_ok=True)
        raise


def _check_address(host: str, port: int) -> None:
    """Refuse, before the model loads, an address the server could not listen on: uvicorn
    reported a port in use only after startup, in its own words, and an unknown host as
    "[Errno -2] Name or service not known" without naming it."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FewrecError(
            with_fix(
                f"cannot listen on host {host!r}: {exc.strerror}",
                "--host 127.0.0.1, or 0.0.0.0 for every address",
            )
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as exc:
            raise FewrecError(
                with_fix(
                    f"cannot listen on {host}:{port}: {exc.strerror}",
                    "stop what uses the port, or choose another with --port",
                )
            ) from None


def run_server(
    model: str | Path,
    store_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_keys: Sequence[str] | None = None,
    exploration: ExplorationConfig | None = None,
    index: str = "auto",
    max_body_bytes: int = DEFAULT_MAX_BODY,
    log_level: str = "info",
    blas_threads: int | None = 1,
    allowed_hosts: Sequence[str] | None = None,
    max_store_mb: float | None = None,
) -> None:
    """Serve a saved model directory with uvicorn (one process; requests run in threads).

    ``blas_threads`` caps BLAS threads: per-request matrix products are small, and threads
    competing for the cores cost more than they gain.

    ``allowed_hosts``: the host names requests may name in their ``Host`` header (`HostCheck`);
    None: `LOOPBACK_NAMES` when ``host`` is a loopback address, any name otherwise; ``["*"]``:
    any name. Bound to 127.0.0.1 behind a proxy that passes the public host name on, list it.
    """
    import uvicorn

    from fewrec.text.encoder import keep_query_texts

    _check_address(host, port)
    app = create_app(
        model,
        store_path,
        api_keys=api_keys,
        exploration=exploration,
        index=index,
        max_body_bytes=max_body_bytes,
        max_store_mb=max_store_mb,
    )
    # the process's settings once it is sure to serve (a start refused above left them changed:
    # the next query texts of a test process went unwritten); queries come after uvicorn starts
    keep_query_texts(False)  # users' sentences: in memory, not a disk write each and a row for good
    if blas_threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(blas_threads)
    if allowed_hosts is None and is_loopback(host):
        allowed_hosts = LOOPBACK_NAMES
    if allowed_hosts and "*" not in allowed_hosts:
        app.add_middleware(HostCheck, hosts=[*allowed_hosts, *LOOPBACK_NAMES])
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
