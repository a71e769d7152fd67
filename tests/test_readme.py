"""The README's Python examples run as written (in a scratch directory), and warn about nothing."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # e.g. text given to a model that ignores it
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
    recs = namespace["recs"]
    assert len(recs) == 10 and recs["reason"].str.len().gt(0).all()
    assert (tmp_path / "models" / "ease" / "config.json").exists()
    assert "new-1" in namespace["model"].fitted.items.ids


def test_readme_benchmark_examples_keep_the_recorded_results():
    """`benchmark --output benchmarks/warm.json` overwrote a recorded result, and two seed
    examples wrote the same seeds.json; every example's result has its own path outside
    benchmarks/, and that path is git-ignored."""
    text = README.read_text().replace("\\\n", " ")
    lines = [ln for ln in text.splitlines() if re.search(r"fewrec (benchmark|merge-seeds)\b", ln)]
    outputs = [m.group(1) for ln in lines for m in [re.search(r"--output (\S+)", ln)] if m]
    assert len(outputs) >= 4
    assert not [o for o in outputs if o.startswith("benchmarks/")]
    assert len(set(outputs)) == len(outputs), outputs
    ignored = (README.parent / ".gitignore").read_text().split()
    assert all(o.split("/")[0] + "/" in {i.strip("/") + "/" for i in ignored} for o in outputs)
