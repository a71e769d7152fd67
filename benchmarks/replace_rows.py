"""Replace some models' rows of a recorded benchmark table with a new run of them.

When one model changes, rerunning a whole table (every model, every split seed) takes hours;
this reruns nothing. Give it a new run of the changed models *and the baseline* on the same
protocol, reveal and split seeds. It checks that the splits are the same (by their fingerprints;
in a table recorded before runs had them, by the baseline's results, and random's where the
baseline scores 0) and that the models' settings (``--set``) are, swaps the models' per-seed
results, recomputes the summary and the gains, and rewrites the JSON and the markdown table,
keeping any notes written below the table.

Usage::

    python benchmarks/replace_rows.py NEW.json --into benchmarks/cold-user.json --models kshot-ridge
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from fewrec.errors import ConfigError
from fewrec.eval.benchmark import add_gains, check_same_data, combine_seeds, markdown_table, split_runs

#: The lines `markdown_table` writes below a table (how many test users; notes on them).
TABLE_FOOTER = re.compile(
    r"test (users|samples)\b|Note: (the K columns|\d+ test (users|samples) behind|no gains over)"
    r"|Cells: mean ± "
)


#: What a new run of the same split says of it that an older table may lack: its per-seed test
#: users, the ratio of test to training users that the corrected intervals need, its fingerprint.
SPLIT_SETTINGS = ("n_test_users", "test_train_ratio", "split_fingerprint", "train_fingerprint")


def check_same_split(old: dict, new: dict, models: list[str], baseline: str) -> None:
    """Refuse two one-split runs that were not on the same split: their split fingerprints differ
    or, in a table recorded before runs had them, a model not rerun scores otherwise at 10. That
    is the baseline, and ``random`` too where the baseline scores 0 everywhere, as popularity does
    on cold-item, and says nothing of the split."""
    seed = old["seed"]
    # the training side, where both runs have it (runs before 2026-12-07 (night) do not)
    trained = old["settings"].get("train_fingerprint"), new["settings"].get("train_fingerprint")
    if all(trained) and trained[0] != trained[1]:
        raise ConfigError(
            f"the training set of seed {seed} differs (fingerprint {trained[1]} vs {trained[0]})"
        )
    mine, theirs = old["settings"].get("split_fingerprint"), new["settings"].get("split_fingerprint")
    if mine and theirs:
        if isinstance(mine, dict) and isinstance(theirs, dict):  # cold-user: one per K
            mine, theirs = ({k: fp[k] for k in sorted(mine.keys() & theirs.keys())} for fp in (mine, theirs))
        if mine != theirs or not mine:
            raise ConfigError(f"the split of seed {seed} differs (fingerprint {theirs} vs {mine})")
        return
    for key in ("n_test_users", "n_cold_items", "n_test"):
        if key in old["settings"] and key in new["settings"] and old["settings"][key] != new["settings"][key]:
            raise ConfigError(f"{key} differs on split seed {seed}: not the same splits")
    # accuracy at 10 (AUC on tallrec); beyond-accuracy metrics may have changed with the evaluation itself
    # (coverage over the cold items only, for one)
    beyond = ("coverage", "diversity", "novelty")
    for witness in (baseline, "random"):
        if witness in models or witness not in old["models"] or witness not in new["models"]:
            continue
        a, b = old["models"][witness], new["models"][witness]
        headline = [
            k for k in a if k.endswith(("@10", "/auc")) and not k.rpartition("/")[2].startswith(beyond)
        ]
        if any(a[k] != b.get(k) for k in headline):
            raise ConfigError(f"{witness} differs on split seed {seed}: not the same splits")
        if any(a[k] for k in headline):
            return
    raise ConfigError(
        f"cannot tell whether split seed {seed} is the same: no split fingerprint, and no model "
        f"both runs have and this does not replace ({baseline}, random) scores above 0"
    )


def replace_rows(new: dict, old: dict, models: list[str], baseline: str = "popularity") -> dict:
    """``old`` with the rows of ``models`` taken from ``new`` (see the module doc)."""
    new_runs = {r["seed"]: r for r in split_runs(new)}
    old_runs = split_runs(old)
    if sorted(new_runs) != sorted(r["seed"] for r in old_runs):
        raise ConfigError(f"split seeds differ: {sorted(new_runs)} vs {[r['seed'] for r in old_runs]}")
    if new["protocol"] != old["protocol"]:
        raise ConfigError(f"protocol differs: {new['protocol']!r} vs {old['protocol']!r}")
    check_same_data(new, old)
    if new["settings"].get("reveal") != old["settings"].get("reveal"):
        raise ConfigError("the reveal differs")
    # the --set overrides of the rows replaced and of the models that vouch for the split
    named = {*models, baseline, "random"}
    mine, theirs = ({m: c for m, c in (d.get("configs") or {}).items() if m in named} for d in (old, new))
    if mine != theirs:
        raise ConfigError(f"the models' settings (--set) differ: {theirs} vs {mine}")
    for run in old_runs:
        check_same_split(run, new_runs[run["seed"]], models, baseline)
        fresh = new_runs[run["seed"]]["models"]
        for m in models:
            if m not in fresh:
                raise ConfigError(f"the new run has no {m!r}")
            run["models"][m] = fresh[m]
        # the same split, so the new run's counts of it hold for the old run; a table recorded
        # before they were kept gets them (its per-seed test users, the ratio of test to training
        # users that the corrected intervals need); a run's settings may be shared, so copied
        settings = new_runs[run["seed"]]["settings"]
        run["settings"] = {
            **run["settings"],
            **{k: settings[k] for k in SPLIT_SETTINGS if k in settings},
        }
    if "runs" in old:
        return {**combine_seeds(old_runs, baseline), "machine": old["machine"]}
    out = {**old, "settings": old_runs[0]["settings"], "models": old_runs[0]["models"]}
    return add_gains(out, baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("new", type=Path)
    parser.add_argument("--into", type=Path, required=True)
    parser.add_argument("--models", required=True, help="comma-separated")
    parser.add_argument("--baseline", default="popularity")
    args = parser.parse_args()
    old = json.loads(args.into.read_text())
    result = replace_rows(json.loads(args.new.read_text()), old, args.models.split(","), args.baseline)
    args.into.write_text(json.dumps(result, indent=2))
    md = args.into.with_suffix(".md")
    lines = md.read_text().splitlines()
    table_end = max(i for i, line in enumerate(lines) if line.startswith("|"))
    head = [line for line in lines[: table_end + 1] if not line.startswith("|")]
    tail = lines[table_end + 1 :]
    while tail and (not tail[0].strip() or TABLE_FOOTER.match(tail[0])):  # rewritten below
        tail.pop(0)
    notes = "\n\n" + "\n".join(tail) + "\n" if tail else "\n"
    md.write_text("\n".join(head) + "\n" + markdown_table(result) + notes)
    print(f"replaced {args.models} in {args.into} and {md}")


if __name__ == "__main__":
    main()
