"""``python -m fewrec.serve MODEL_DIR --store FILE``: run the HTTP service (see `run_server`)."""

from __future__ import annotations

import argparse
import sys

from fewrec.errors import FewrecError, missing_extra

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def port(text: str) -> int:
    """A TCP port, 0-65535 (0: any free one); argparse turns the ValueError into a usage error."""
    number = int(text)
    if not 0 <= number <= 65535:
        raise ValueError(text)
    return number


def positive(text: str) -> int:
    """A whole number of at least 1 (argparse turns the ValueError into a usage error)."""
    number = int(text)
    if number < 1:
        raise ValueError(text)
    return number


def main(argv: list[str] | None = None) -> int:
    from fewrec.serve.engine import ExplorationConfig
    from fewrec.serve.index import INDEX_KINDS

    parser = argparse.ArgumentParser(prog="python -m fewrec.serve", description=__doc__)
    parser.add_argument("model", help="saved model directory")
    parser.add_argument("--store", default="fewrec.db", help="SQLite store file (created if missing)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=port, default=8000)
    parser.add_argument("--api-key", action="append", help="key accepted for writes (repeatable)")
    parser.add_argument("--exploration", choices=["thompson", "ucb", "off"], default="thompson")
    parser.add_argument("--explore-width", type=float, help="UCB's c or Thompson's scale")
    parser.add_argument(
        "--explore-until",
        type=int,
        default=20,
        help="explore below this many history items (likes, ratings above a dislike)",
    )
    parser.add_argument("--index", choices=INDEX_KINDS, default="auto")
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS, type=str.lower)
    parser.add_argument(
        "--max-body-bytes",
        type=positive,
        default=1 << 20,
        help="the largest request body accepted, in bytes",
    )
    parser.add_argument(
        "--max-store-mb",
        type=float,
        help="refuse writes once the store holds this many MB (default: no limit)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        help="a host name requests may name, repeatable; '*': any (default: localhost names on a "
        "loopback address, any otherwise)",
    )
    args = parser.parse_args(argv)
    if args.exploration == "off" and args.explore_width is not None:
        parser.error("--explore-width has no effect with --exploration off; drop one of them")
    try:
        from fewrec.serve.app import run_server

        width = args.explore_width
        settings = {} if width is None else {"scale" if args.exploration == "thompson" else "c": width}
        explore = ExplorationConfig(policy=args.exploration, until=args.explore_until, **settings)
        run_server(
            args.model,
            args.store,
            host=args.host,
            port=args.port,
            api_keys=args.api_key,
            exploration=explore,
            index=args.index,
            log_level=args.log_level,
            allowed_hosts=args.allow_host,
            max_body_bytes=args.max_body_bytes,
            max_store_mb=args.max_store_mb,
        )
    except FewrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # the serve extra is not installed
        missing = missing_extra(exc)
        if missing is None:
            raise
        print(f"error: {missing}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
