"""Running the CLI in the test process: its exit code and output as `subprocess.run` gives them.

A subprocess pays 2-3 s of Python's and the libraries' imports per call; the CLI tests make
about seventy calls. `fewrec_here` runs ``fewrec ARGS`` through the CLI's own entry point
(`fewrec.cli.main`) with consoles made as a pipe's would be (``$COLUMNS`` unset, as the
subprocess helpers run it), and puts back what the entry point changes in the process. A
traceback raises here, so a test that expects none fails on it. What commands set for the whole
process is set back after each call (`fewrec serve` keeps no query texts on disk and caps BLAS
threads; `fewrec train` makes fewrec's log say its stages; the entry point shows warnings its own
way, and lets SIGPIPE end the process, as it ends Unix tools). Checks of the process itself
(``python -m fewrec``, the CLI without an optional package, models of one's own imported at
start-up, a closed pipe, a full disk) keep a subprocess.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import warnings
from contextlib import redirect_stderr, redirect_stdout
from unittest import mock


def fewrec_here(*args: str) -> subprocess.CompletedProcess:
    """``fewrec ARGS`` in this process, its environment this one's without ``COLUMNS``."""
    from threadpoolctl import threadpool_limits

    from fewrec import cli
    from fewrec.text.encoder import keep_query_texts

    out, err = io.StringIO(), io.StringIO()
    code = 0
    keep, level = keep_query_texts(), logging.getLogger("fewrec").level
    pipe = signal.getsignal(signal.SIGPIPE) if hasattr(signal, "SIGPIPE") else None
    with (
        threadpool_limits(limits=None),  # puts back the limits of now on exit
        mock.patch.dict(os.environ),  # and the environment
        warnings.catch_warnings(),  # and the filters and showwarning, which main() sets
    ):
        os.environ.pop("COLUMNS", None)  # a pipe's own width, as the subprocess helpers ran it
        with (
            mock.patch.object(sys, "argv", ["fewrec", *args]),
            redirect_stdout(out),
            redirect_stderr(err),
            mock.patch.object(cli, "console", cli._console()),  # made for the streams above
            mock.patch.object(cli, "err", cli._console(stderr=True)),
        ):
            try:
                cli.main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                keep_query_texts(keep)
                logging.getLogger("fewrec").setLevel(level)
                if pipe is not None:  # (SIG_DFL here: a test's closed pipe would end pytest)
                    signal.signal(signal.SIGPIPE, pipe)
    return subprocess.CompletedProcess(["fewrec", *args], code, out.getvalue(), err.getvalue())
