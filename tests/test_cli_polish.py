"""Findings of a README walk-through: the CLI on small own data, its notes and its error
lines in logs, and warnings a plain fit printed."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest


def fewrec(*args):
    return subprocess.run([sys.executable, "-m", "fewrec.cli", *args], capture_output=True, text=True)


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def short_histories(tmp_path):
    """80 users with 3-12 interactions each: no test user reaches the default K = 20."""
    rows = [(f"u{u}", f"i{(u * 7 + j * 3) % 40}") for u in range(80) for j in range(3 + u % 10)]
    path = tmp_path / "small.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id"]).to_csv(path, index=False)
    return path


def test_cold_user_default_shots_leave_out_the_k_no_test_user_reaches(tmp_path, short_histories):
    """The default shots include K = 20, which users of 3-12 interactions never reach: the run
    failed. It now leaves such K out with one note; K asked for with --shots still fail."""
    own = ["--interactions", str(short_histories), "--rating-col", "", "--time-col", ""]
    out = tmp_path / "r.json"
    args = ["benchmark", "--protocol", "cold-user", "--models", "popularity", *own]
    proc = fewrec(*args, "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "note: K = 20 left out: no test user has an interaction left after revealing" in proc.stderr
    assert "the most any user has is 12" in proc.stderr
    assert proc.stderr.count("note:") == 1
    result = json.loads(out.read_text())
    assert result["settings"]["shots"] == [0, 1, 3, 5, 10]
    assert result["settings"]["shots_left_out"] == [20]
    assert "K20/ndcg@10" not in result["models"]["popularity"]
    asked = fewrec(*args, "--shots", "5,20")
    assert asked.returncode == 2
    assert "no test user has an interaction left after revealing K = 20" in flat(asked.stderr)

