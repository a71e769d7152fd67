"""Running the CLI in the test process: its exit code and output as `subprocess.run` gives them.

A subprocess pays 2-3 s of Python's and the libraries' imports per call; the suite makes about
a hundred CLI calls. `fewrec_here` runs ``fewrec ARGS`` through the CLI's own entry point
(`fewrec.cli.main`) with consoles made as a pipe's would be (``$COLUMNS`` unset, as the
subprocess helpers run it), and puts back what the entry point changes in the process. A
traceback raises here, so a test that expects none fails on it. What commands set for the whole
process is set back after each call (`fewrec serve` keeps no query texts on disk and caps BLAS
threads; `fewrec train` makes fewrec's log say its stages). Checks of the process itself
(the ``python -m fewrec`` entry, a terminal's width, an exit in the middle of a write) keep a
subprocess.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import warnings
from contextlib import redirect_stderr, redirect_stdout
from unittest import mock


def fewrec_here(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``fewrec ARGS`` in this process; ``env``: the environment it sees (default: this one's,
    without ``COLUMNS``)."""
    from threadpoolctl import threadpool_limits

    from fewrec import cli
    from fewrec.text.encoder import keep_query_texts

    environ = {k: v for k, v in os.environ.items() if k != "COLUMNS"} if env is None else env
    out, err = io.StringIO(), io.StringIO()
    code = 0
    keep, level = keep_query_texts(), logging.getLogger("fewrec").level
    with (
        threadpool_limits(limits=None),  # puts back the limits of now on exit
        mock.patch.dict(os.environ, environ, clear=True),
        mock.patch.object(sys, "argv", ["fewrec", *args]),
        mock.patch.object(warnings, "showwarning", warnings.showwarning),
        warnings.catch_warnings(),
        redirect_stdout(out),
        redirect_stderr(err),
        mock.patch.object(cli, "console", cli._console()),
        mock.patch.object(cli, "err", cli._console(stderr=True)),
    ):
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            keep_query_texts(keep)
            logging.getLogger("fewrec").setLevel(level)
    return subprocess.CompletedProcess(["fewrec", *args], code, out.getvalue(), err.getvalue())
