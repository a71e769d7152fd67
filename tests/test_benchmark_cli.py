"""The benchmark runner's JSON, and the CLI's behaviour on good and bad input."""

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import fewrec_here as fewrec

from fewrec.errors import ConfigError
from fewrec.eval.benchmark import (
    combine_seeds,
    markdown_table,
    run_benchmark,
    run_seeds,
    split_runs,
    write_result,
)


def test_warm_benchmark_json_shape_and_values(tmp_path):
    result = run_benchmark("warm", ["popularity", "ease"], progress=False)
    assert result["protocol"] == "warm" and result["dataset"] == "movielens-100k"
    assert result["seed"] == 0
    # timings (and a score's last digits) depend on the CPU: the JSON named only the OS
    machine = result["machine"]
    assert machine["cpus"] == os.cpu_count() and machine["cpu"] not in ("", "unknown"), machine
    row = result["models"]["ease"]
    for key in (
        "ndcg@10",
        "recall@10",
        "mrr",
        "hr@10",
        "precision@10",
        "coverage@10",
        "diversity@10",
        "novelty@10",
        "train_seconds",
        "score_seconds",
        "ndcg@10_ci_low",
    ):
        assert key in row, key
    assert row["ndcg@10_ci_low"] < row["ndcg@10"] < row["ndcg@10_ci_high"]
    assert row["ndcg@10"] > result["models"]["popularity"]["ndcg@10"]
    path = write_result(result, tmp_path / "warm.json")
    assert json.loads(path.read_text())["models"]["ease"]["ndcg@10"] == row["ndcg@10"]
    assert "| ease |" in markdown_table(result)
    with pytest.raises(ConfigError, match="give the JSON path"):  # its table would overwrite it
        write_result(result, tmp_path / "warm.md")


def test_cold_user_benchmark_reports_each_k():
    result = run_benchmark("cold-user", ["popularity"], shots=[0, 3], progress=False)
    row = result["models"]["popularity"]
    assert {"K0/ndcg@10", "K3/ndcg@10", "train_seconds"} <= set(row)


def test_single_split_gains_over_the_baseline_are_paired_over_test_users():
    result = run_benchmark("cold-user", ["popularity", "itemknn"], shots=[5], reveal="random", progress=False)
    assert result["baseline"] == "popularity" and result["headline"] == "K5/ndcg@10"
    rows = result["models"]
    per_user = np.asarray(rows["itemknn"]["K5/ndcg@10/per_user"])
    assert len(per_user) == result["settings"]["n_test_users"]["K5"]
    assert per_user.mean() == pytest.approx(rows["itemknn"]["K5/ndcg@10"], abs=1e-6)
    gain = rows["itemknn"]["K5/ndcg@10_gain"]
    expected = rows["itemknn"]["K5/ndcg@10"] / rows["popularity"]["K5/ndcg@10"] - 1
    assert gain == pytest.approx(expected, abs=1e-5)
    assert rows["itemknn"]["K5/ndcg@10_gain_ci_low"] < gain < rows["itemknn"]["K5/ndcg@10_gain_ci_high"]
    assert rows["popularity"]["K5/ndcg@10_gain"] == 0.0
    assert (
        rows["popularity"]["K5/ndcg@10_gain_ci_low"] == rows["popularity"]["K5/ndcg@10_gain_ci_high"] == 0.0
    )
    assert f"{gain:+.1%}" in markdown_table(result) and "gain over popularity" in markdown_table(result)
    # no baseline among the models (or none asked for): no gains, no gain column
    alone = run_benchmark("cold-user", ["itemknn"], shots=[5], reveal="random", progress=False)
    assert "K5/ndcg@10_gain" not in alone["models"]["itemknn"] and "gain over" not in markdown_table(alone)
    unasked = run_benchmark(
        "cold-user", ["popularity", "itemknn"], shots=[5], reveal="random", baseline=None, progress=False
    )
    assert "K5/ndcg@10_gain" not in unasked["models"]["itemknn"]
    with pytest.raises(ConfigError, match="baseline 'popularty' is not among the models"):
        run_benchmark("cold-user", ["popularity", "itemknn"], baseline="popularty", progress=False)


def test_tallrec_benchmark_like_share_beats_random(tmp_path):
    result = run_benchmark("tallrec", ["random", "like-share"], shots=[16], progress=False)
    assert result["models"]["like-share"]["K16/auc"] > 0.68
    assert abs(result["models"]["random"]["K16/auc"] - 0.5) < 0.06
    # its table says its cells are means over the K-shot draws (a rewrite had lost it)
    title = write_result(result, tmp_path / "t.json").with_suffix(".md").read_text().splitlines()[0]
    assert title == "# tallrec on movielens-100k (seed 0: mean over K-shot draws 0, 1, 2)"


def test_cold_item_id_models_cannot_rank_cold_items():
    result = run_benchmark("cold-item", ["random", "ease"], progress=False)
    assert result["models"]["ease"]["recall@20"] < result["models"]["random"]["recall@20"]


def test_seeds_summary_is_the_mean_of_the_per_seed_runs(tmp_path):
    result = run_seeds(
        "cold-user", ["popularity", "itemknn"], seeds=[0, 3], shots=[5], reveal="random", progress=False
    )
    runs = [result["runs"][s]["itemknn"]["K5/ndcg@10"] for s in ("0", "3")]
    assert runs[0] != runs[1]  # another seed, other test users
    summary = result["summary"]["itemknn"]["K5/ndcg@10"]
    assert summary["mean"] == pytest.approx(sum(runs) / 2)
    assert summary["ci"][0] < summary["mean"] < summary["ci"][1]
    # gains are paired by seed
    base = [result["runs"][s]["popularity"]["K5/ndcg@10"] for s in ("0", "3")]
    gain = result["gain"]["itemknn"]
    assert gain["per_seed"] == pytest.approx([r / b - 1 for r, b in zip(runs, base, strict=True)])
    assert result["gain"]["popularity"]["mean"] == 0.0
    # the splits share most training users: the corrected interval (Nadeau and Bengio) is
    # wider by sqrt(1 + n * test/train), here 189 test users over 660 training users
    ratio = result["settings"]["test_train_ratio"]
    assert ratio == pytest.approx(189 / 660, rel=0.02)
    width = gain["ci"][1] - gain["ci"][0]
    fixed = gain["ci_corrected"][1] - gain["ci_corrected"][0]
    assert fixed == pytest.approx(width * (1 + 2 * ratio) ** 0.5)
    # the seed-0 run equals a plain single-seed run
    single = run_benchmark("cold-user", ["itemknn"], seed=0, shots=[5], reveal="random", progress=False)
    assert runs[0] == single["models"]["itemknn"]["K5/ndcg@10"]
    path = write_result(result, tmp_path / "seeds.json")
    text = path.with_suffix(".md").read_text()
    assert "split seeds 0, 3" in text and "| itemknn |" in text and "gain over popularity" in text
    assert "; corrected [" in text


def test_seed_runs_made_apart_merge_into_the_seeds_table(tmp_path):
    together = run_seeds("cold-user", ["popularity", "itemknn"], seeds=[0, 3], shots=[5], progress=False)
    a = run_benchmark("cold-user", ["popularity", "itemknn", "ease"], seed=0, shots=[1, 5], progress=False)
    b = run_seeds("cold-user", ["popularity", "itemknn"], seeds=[3], shots=[5], progress=False)
    write_result(a, tmp_path / "a.json")
    write_result(b, tmp_path / "b.json")
    proc = fewrec(
        "merge-seeds",
        str(tmp_path / "a.json"),
        str(tmp_path / "b.json"),
        "--output",
        str(tmp_path / "m.json"),
    )
    assert proc.returncode == 0, proc.stderr
    merged = json.loads((tmp_path / "m.json").read_text())
    # only what every run has: ease and K1 were in one run alone
    assert merged["seeds"] == [0, 3] and list(merged["summary"]) == ["popularity", "itemknn"]
    assert merged["settings"]["shots"] == [5] and "K1/ndcg@10" not in merged["summary"]["itemknn"]
    for m in ("popularity", "itemknn"):
        assert merged["summary"][m]["K5/ndcg@10"]["mean"] == pytest.approx(
            together["summary"][m]["K5/ndcg@10"]["mean"]
        )
    assert merged["gain"]["itemknn"]["per_seed"] == pytest.approx(together["gain"]["itemknn"]["per_seed"])
    assert "split seeds 0, 3" in (tmp_path / "m.md").read_text()
    # an output it cannot write: refused before the table (it failed after it, with a traceback)
    refused = fewrec("merge-seeds", str(tmp_path / "a.json"), "--output", str(tmp_path))
    assert refused.returncode == 2 and "is a folder" in refused.stderr and refused.stdout == ""


def test_merging_refuses_runs_that_do_not_belong_together():
    a = run_benchmark("cold-user", ["popularity"], seed=0, shots=[5], progress=False)
    b = run_benchmark("cold-user", ["popularity"], seed=1, shots=[5], reveal="random", progress=False)
    with pytest.raises(ConfigError, match="reveal"):
        combine_seeds([a, b])
    with pytest.raises(ConfigError, match="once"):
        combine_seeds(split_runs(a) + [a])
    c = run_benchmark("cold-user", ["itemknn"], seed=1, shots=[5], progress=False)
    with pytest.raises(ConfigError, match="no model in common"):
        combine_seeds([a, c])
    with pytest.raises(ConfigError, match="baseline 'itemknn' is not among"):
        combine_seeds([a], baseline="itemknn")
    d = run_benchmark(
        "cold-user",
        ["popularity"],
        seed=1,
        shots=[5],
        configs={"popularity": {"segment_by": "auto"}},
        progress=False,
    )
    with pytest.raises(ConfigError, match="config overrides"):
        combine_seeds([a, d])
    # another data set under the same name (every custom Dataset is "custom" unless named)
    other = {**c, "models": a["models"], "data_fingerprint": "0" * 16}
    with pytest.raises(ConfigError, match="different data under the name 'movielens-100k'"):
        combine_seeds([a, other])
    assert len(a["data_fingerprint"]) == 16 and a["data_fingerprint"] == c["data_fingerprint"]
    merged = combine_seeds(split_runs(a) + split_runs(c | {"models": a["models"]}))
    assert merged["data_fingerprint"] == a["data_fingerprint"]
    assert split_runs(merged | {"runs": {"0": a["models"]}})[0]["data_fingerprint"] == a["data_fingerprint"]


def test_seeds_without_the_headline_metric_gives_no_gain():
    result = run_seeds("cold-user", ["popularity"], seeds=[0, 1], shots=[0], progress=False)
    assert result["gain"] == {} and result["headline"] is None
    assert "K0/ndcg@10" in result["summary"]["popularity"]
    assert "gain over" not in markdown_table(result)


def test_seeds_refuses_what_it_cannot_summarise():
    with pytest.raises(ConfigError, match="fixed split"):
        run_seeds("tallrec", ["like-share"], seeds=[0, 1])
    with pytest.raises(ConfigError, match="baseline 'itemknn' is not among"):
        run_seeds("warm", ["ease"], seeds=[0, 1], baseline="itemknn")
    with pytest.raises(ConfigError, match="distinct"):
        run_seeds("warm", ["popularity"], seeds=[1, 1])
    for seeds in ("012", 3, [0.5, 1.7]):  # "012" ran seeds 0, 1 and 2; floats were truncated
        with pytest.raises(ConfigError, match="list of whole numbers"):
            run_seeds("warm", ["popularity"], seeds=seeds)
    with pytest.raises(ConfigError, match="list of model names"):
        run_benchmark("warm", "ease")  # was "unknown model(s) ['e', 'a', 's', 'e']"


def test_unknown_protocol_and_model():
    with pytest.raises(ConfigError, match="unknown protocol"):
        run_benchmark("nope")
    with pytest.raises(ConfigError, match="unknown model"):
        run_benchmark("warm", ["nope"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["benchmark", "--protocol", "nope"], "unknown protocol"),
        (["benchmark", "--models", "ease,nope"], "unknown model"),
        (["benchmark", "--shots", "a,b"], "--shots expects integers"),
        (["data", "fetch", "nope"], "unknown dataset"),
        (["recommend", "/no/such/dir"], "/no/such/dir does not exist"),
        (["recommend", "/no/[bold]such[/bold]"], "/no/[bold]such[/bold]"),  # printed, not markup
        (["nosuch"], "No such command"),
        (["benchmark", "--seed", "x"], "Invalid value"),
        (["benchmark", "--seeds", "0,x"], "--seeds expects integers"),
        (["benchmark", "--seeds", "0,1", "--seed", "2"], "not both"),
        (["benchmark", "--protocol", "tallrec", "--seeds", "0,1"], "fixed split"),
        (["benchmark", "--models", "ease", "--baseline", "popularty"], "--baseline 'popularty' is not among"),
        (
            ["benchmark", "--seeds", "0,1", "--models", "ease", "--baseline", "itemknn"],
            "'itemknn' is not among",
        ),
        (["merge-seeds", "/no/such.json", "--output", "/tmp/m.json"], "no such file"),
        (["merge-seeds", "pyproject.toml", "--output", "/tmp/m.json"], "not a fewrec benchmark JSON"),
        (["merge-seeds", "src", "--output", "/tmp/m.json"], "src is a folder"),  # (a traceback)
        (["benchmark", "--protocol", "warm", "--shots", "5"], "shots apply to the cold-user and tallrec"),
        (["benchmark", "--protocol", "warm", "--reveal", "random"], "reveal applies to the cold-user"),
        (["benchmark", "--protocol", "warm", "--models", "ease@movielens-1m"], "on the tallrec protocol"),
        (["benchmark", "--protocol", "tallrec", "--models", "like-clf@nope"], "only NAME@catalogue"),
        (["benchmark", "--models", "popularity", "--set", "ease.l2=5"], "overrides for ['ease']"),
        (["benchmark", "--models", "popularity", "--output", "/tmp/r.md"], "give the JSON path"),
        (
            ["benchmark", "--protocol", "cold-user", "--models", "popularity", "--shots", "100000"],
            "no test user has an interaction left after revealing K = 100000",
        ),
        (["train", "popularity", "--output", "pyproject.toml"], "is a file"),
        (["train", "popularity", "--output", "/no/such/dir/m", "--encoding", "bogus"], "not a text encoding"),
        (["train", "nope", "--output", "/no/such/dir/m"], "unknown model"),
        (["serve", "/no/such/dir", "--log-level", "loud"], "--log-level must be one of"),
        (["serve", "/no/such/dir", "--port", "99999"], "--port must be between"),
        (["serve", "/no/such/dir", "--index", "bogus"], "--index must be one of"),
        (["serve", "/no/such/dir", "--exploration", "greedy"], "--exploration must be ucb, thompson or off"),
        (
            ["serve", "/no/such/dir", "--explore-width", "-1"],
            "--explore-width must be between 0 and 1000, got -1",  # (it was "c: Input should be")
        ),
        (
            ["serve", "/no/such/dir", "--exploration", "thompson", "--explore-width", "inf"],
            "--explore-width must be between 0 and 1000, got inf",
        ),
        (["train", "ease", "--output", "/no/such/dir/m", "--set", "l2=1e400"], "finite number"),
        (["scale", "recommend", "/no/such/dir", "--output", "src"], "is a folder"),
        (["scale", "recommend", "/no/such/dir", "--output", "/tmp/r.parquet", "--k", "0"], "k must be >= 1"),
    ],
)
def test_cli_user_mistakes_give_one_clear_error(args, message):
    proc = fewrec(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_cli_set_takes_dotted_keys_for_nested_settings():
    """``--set lora.max_epochs=1`` was "Extra inputs are not permitted": only the JSON form
    ``--set 'lora={"max_epochs": 1}'`` worked. Dotted keys now nest, and merge."""
    from fewrec.cli import _parse_set
    from fewrec.errors import FewrecError
    from fewrec.models import make_model

    dotted = _parse_set(["lora.max_epochs=1", "lora.lr=0.01", "max_episodes=8"])
    assert dotted == {"lora": {"max_epochs": 1, "lr": 0.01}, "max_episodes": 8}
    assert _parse_set(['lora={"max_epochs": 1}', "lora.lr=0.01"]) == {"lora": {"max_epochs": 1, "lr": 0.01}}
    assert _parse_set(["lora.lr=0.01", 'lora={"max_epochs": 1}']) == {"lora": {"max_epochs": 1, "lr": 0.01}}
    config = make_model("lm-lora", **dotted).config
    assert config == make_model("lm-lora", lora={"max_epochs": 1, "lr": 0.01}, max_episodes=8).config
    assert config.lora.rank == 8 and config.lora.patience == 2  # the others keep their defaults
    assert _parse_set(["lm-lora.lora.lr=0.01"]) == {"lm-lora": {"lora": {"lr": 0.01}}}
    with pytest.raises(FewrecError, match="Fix: name the setting"):
        _parse_set(["lora..lr=1"])
    with pytest.raises(FewrecError, match="inside lora, which another --set gave the value 5"):
        _parse_set(["lora=5", "lora.lr=1"])
    with pytest.raises(FewrecError, match="gives lora one value, but another --set gave it nested"):
        _parse_set(["lora.lr=1", "lora=5"])  # the other order had dropped lr without a word
    # on the command line: both dotted settings reach the nested config (one error names both)
    for args in (
        ["train", "lm-lora", "--output", "/no/such/dir/m"],
        ["benchmark", "--protocol", "tallrec", "--models", "lm-lora"],
    ):
        prefix = "lm-lora." if args[0] == "benchmark" else ""
        proc = fewrec(*args, "--set", f"{prefix}lora.lr=0", "--set", f"{prefix}lora.max_epochs=-1")
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and "Extra inputs" not in proc.stderr
        assert "lr: Input should be greater than 0" in proc.stderr
        assert "max_epochs: Input should be greater than or equal to 1" in proc.stderr
    proc = fewrec("benchmark", "--models", "popularity", "--set", "seed=1")
    assert proc.returncode == 2 and "--set expects model.key=value, got 'seed'" in proc.stderr


def test_cli_train_and_recommend_own_csv(tmp_path):
    inter = tmp_path / "i.csv"
    inter.write_text("uid,iid\n" + "".join(f"{u},{i}\n" for u in range(30) for i in range(u % 7, 12, 2)))
    out = tmp_path / "model"
    proc = fewrec(
        "train",
        "ease",
        "--output",
        str(out),
        "--interactions",
        str(inter),
        "--user-col",
        "uid",
        "--item-col",
        "iid",
        "--rating-col",
        "",
        "--time-col",
        "",
    )
    assert proc.returncode == 0, proc.stderr
    proc = fewrec("recommend", str(out), "--item", "1", "--k", "3")
    assert proc.returncode == 0, proc.stderr
    assert "Recommendations" in proc.stdout
    bad = fewrec("train", "ease", "--output", str(out), "--interactions", str(inter))
    assert bad.returncode == 2 and "missing id column" in bad.stderr


def test_cli_benchmark_and_info_on_your_own_data(tmp_path, ml100k):
    """`benchmark` and `data info` took only built-in dataset names: own data could be evaluated
    from Python alone. They take --interactions and the column options of `train`."""
    inter = ml100k.interactions[ml100k.interactions["user"] < 150]
    frame = pd.DataFrame(
        {
            "who": [f"u {u}" for u in inter["user"]],
            "what": [ml100k.items.id(i) for i in inter["item"]],
            "stars": inter["rating"].to_numpy(),
            "when": inter["timestamp"].to_numpy(),
        }
    )
    path = tmp_path / "shop.csv"
    frame.to_csv(path, index=False)
    cols = ["--user-col", "who", "--item-col", "what", "--rating-col", "stars", "--time-col", "when"]
    out = tmp_path / "r.json"
    args = ["benchmark", "--protocol", "cold-user", "--models", "popularity,itemknn", "--shots", "5"]
    proc = fewrec(*args, "--interactions", str(path), *cols, "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["dataset"] == "shop" and result["settings"]["n_test_users"] == {"K5": 30}
    assert 0 < result["models"]["popularity"]["K5/ndcg@10"] < 1
    info = fewrec("data", "info", "--interactions", str(path), *cols)
    assert info.returncode == 0 and "Dataset('shop': 150 users" in info.stdout
    assert "ratings 1 to 5" in info.stdout  # the scale a query's ratings are read on
    stray = fewrec("data", "info", "--items", str(path))
    assert stray.returncode == 2 and "give --interactions too" in " ".join(stray.stderr.split())


def test_timestamp_col_is_the_time_col_of_every_command(tmp_path):
    """An audit: the time column is ``Columns(timestamp=...)`` in Python, but ``--timestamp-col``
    was no option of the CLI (only ``--time-col``)."""
    path = tmp_path / "shop.csv"
    rows = [(f"u{u}", f"i{(u + i) % 7}", 1 + (u + i) % 5, 1000 * u + i) for u in range(12) for i in range(4)]
    pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "when"]).to_csv(path, index=False)
    own = ["--interactions", str(path)]
    named = fewrec("data", "info", *own, "--timestamp-col", "when")
    assert named.returncode == 0, named.stderr
    assert named.stdout == fewrec("data", "info", *own, "--time-col", "when").stdout
    wrong = fewrec("data", "info", *own, "--timestamp-col", "time")
    assert wrong.returncode != 0 and "timestamp column 'time' is not in the table" in " ".join(
        wrong.stderr.split()
    )
    out = tmp_path / "m"
    trained = fewrec("train", "popularity", "--output", str(out), *own, "--timestamp-col", "when")
    assert trained.returncode == 0, trained.stderr
    for command in ("train", "benchmark", "data info"):
        helped = fewrec(*command.split(), "--help")
        assert "--timestamp-col" in helped.stdout and "--time-col" in helped.stdout, command


def test_cli_item_and_user_tables_keyed_by_their_own_column_names(tmp_path):
    """The item table's key could only be --item-col, the interactions' name for it (and its
    missing-column hint named --item-col); genres could only be a column called genres."""
    (tmp_path / "in.csv").write_text("customer,sku\nc1,p1\nc1,p2\nc2,p2\nc2,p3\nc3,p1\nc3,p3\n")
    (tmp_path / "it.csv").write_text("product,name,tags\np1,Pan,kitchen;home\np2,Hose,garden\np3,Pot,cook\n")
    (tmp_path / "us.csv").write_text("cid,age\nc1,30\nc2,40\nc3,50\n")
    out = tmp_path / "m"
    args = ["train", "popularity", "--output", str(out), "--interactions", str(tmp_path / "in.csv")]
    args += ["--user-col", "customer", "--item-col", "sku", "--rating-col", "", "--time-col", ""]
    args += ["--items", str(tmp_path / "it.csv")]
    bad = fewrec(*args)
    assert bad.returncode == 2 and "--item-id-col" in " ".join(bad.stderr.split())
    args += ["--item-id-col", "product", "--users", str(tmp_path / "us.csv"), "--user-id-col", "cid"]
    proc = fewrec(*args, "--genres-col", "tags", "--genre-sep", ";")
    assert proc.returncode == 0, proc.stderr
    info = pd.read_parquet(out / "items.parquet")
    assert info["name"].tolist() == ["Pan", "Hose", "Pot"]
    assert [list(g) for g in info["genres"]] == [["kitchen", "home"], ["garden"], ["cook"]]
    same = fewrec(*args[:6], "--user-col", "sku", "--item-col", "sku")
    assert same.returncode == 2 and "named both as the user and the item column" in same.stderr


def test_data_info_cuts_long_item_texts(tmp_path):
    """A data audit: `fewrec data info` printed a 1 MB description whole."""
    (tmp_path / "in.csv").write_text("user_id,item_id\nu1,p1\n")
    (tmp_path / "it.csv").write_text("item_id,title,plot\np1,Pan," + "word " * 20_000 + "\n")
    out = fewrec(
        "data", "info", "--interactions", str(tmp_path / "in.csv"), "--items", str(tmp_path / "it.csv")
    )
    assert out.returncode == 0 and len(out.stdout) < 2_000 and "... (100,005 characters)" in out.stdout, (
        out.stdout
    )


def test_cli_code_col_reads_numbers_as_codes(tmp_path):
    """A data audit: from the CLI there was no way to read zip codes as codes, not by decade."""
    (tmp_path / "in.csv").write_text("user_id,item_id\nu1,a\nu2,a\n")
    (tmp_path / "users.csv").write_text("user_id,zip\nu1,10001\nu2,10003\n")
    base = [
        "data",
        "info",
        "--interactions",
        str(tmp_path / "in.csv"),
        "--users",
        str(tmp_path / "users.csv"),
    ]
    bad = fewrec(*base, "--code-col", "zipcode")
    assert bad.returncode == 2 and "not columns of the user table" in " ".join(bad.stderr.split())
    assert fewrec(*base, "--code-col", "zip").returncode == 0
    alone = fewrec(*base[:4], "--code-col", "zip")  # (without --users it was ignored)
    assert alone.returncode == 2 and "give --users too" in " ".join(alone.stderr.split())


def test_cli_item_template_makes_the_item_text(tmp_path):
    """There was no CLI option for the item text template (Python's item_template=): every
    text field was joined. A bad template is one error at load, not a traceback later."""
    (tmp_path / "in.csv").write_text("user_id,item_id\nu1,p1\nu1,p2\nu2,p2\n")
    (tmp_path / "it.csv").write_text("item_id,name,plot,sku\np1,Pan,Fries eggs,A1\np2,Pot,Boils soup,B2\n")
    base = ["data", "info", "--interactions", str(tmp_path / "in.csv"), "--items", str(tmp_path / "it.csv")]
    joined = fewrec(*base)
    assert joined.returncode == 0 and "Pan. Fries eggs. A1" in joined.stdout
    own = fewrec(*base, "--item-template", "{name}: {plot}")
    assert own.returncode == 0, own.stderr
    assert "Pan: Fries eggs" in own.stdout and "A1" not in own.stdout
    for template, message in [("{name} {director}", "names field 'director'"), ("{name", "cannot be filled")]:
        bad = fewrec(*base, "--item-template", template)
        assert bad.returncode == 2 and message in " ".join(bad.stderr.split()), bad.stderr
        assert "Traceback" not in bad.stderr
    stray = fewrec("data", "info", "--item-template", "{title}")
    assert stray.returncode == 2 and "give --interactions too" in " ".join(stray.stderr.split())
    no_items = fewrec("data", "info", "--interactions", str(tmp_path / "in.csv"), "--item-template", "{x}")
    assert no_items.returncode == 2 and "no item table" in " ".join(no_items.stderr.split())


def test_cli_recommend_by_title_on_movielens(tmp_path):
    out = tmp_path / "ease"
    assert fewrec("train", "ease", "--output", str(out)).returncode == 0
    proc = fewrec("recommend", str(out), "--title", "Star Wars", "--title", "Toy Story")
    assert proc.returncode == 0, proc.stderr
    assert "Return of the Jedi" in proc.stdout
    typo = fewrec("recommend", str(out), "--title", "Star Warz Episode")
    assert typo.returncode == 2 and "no item titled" in typo.stderr


def test_like_clf_holds_a_few_shot_fit_tighter_and_stays_calibrated():
    """Cross-validated C: on K = 64 TALLRec samples like-clf must rank validation samples better
    than the same model with a fixed C = 1 and no worse than the like-share rule, and its
    probabilities must stay near the like rate; on K = 16 the rule alone wins the validation."""
    from fewrec.data.movielens import load_dataset
    from fewrec.data.splits import tallrec_split
    from fewrec.eval.evaluate import evaluate_tallrec, tallrec_scores
    from fewrec.models import make_model
    from fewrec.models.base import Query

    split = tallrec_split(load_dataset())

    def valid_auc(name, train, **config):
        model = make_model(name, **config).fit(train)
        return model, evaluate_tallrec(model, split.valid).values["auc"]

    chosen, fixed = [], []
    for seed in (0, 1, 2):
        train = split.train_dataset(split.shots(64, seed))
        model, auc = valid_auc("like-clf", train)
        assert 0.0 < model.c_ < 1.0
        chosen.append(auc)
        fixed.append(valid_auc("like-clf", train, c=1.0)[1])
        assert auc >= valid_auc("like-share", train)[1] - 0.002
        prob = tallrec_scores(model, split.valid)
        assert abs(prob.mean() - split.valid.labels.mean()) < 0.1
    assert sum(chosen) / 3 > sum(fixed) / 3 + 0.01
    # K = 16: the rule wins; the strongly held fit only breaks its ties, so the answer is no
    # worse than the rule's and one user's items still get an order
    few = split.train_dataset(split.shots(16, 0))
    model, auc = valid_auc("like-clf", few)
    assert model.c_ == 0.0 and auc >= valid_auc("like-share", few)[1]
    one = model.score_batch(model.batch_from_queries([Query(items=["50", "100"], ratings=[5, 1])]))
    assert len(np.unique(one[np.isfinite(one)])) > 100


def test_cli_recommend_notes_what_the_model_cannot_use(tmp_path):
    """An unknown --user and --text given to an ID-only model each get a note on stderr; the
    recommendations still come."""
    out = tmp_path / "pop"
    assert fewrec("train", "popularity", "--output", str(out)).returncode == 0
    proc = fewrec("recommend", str(out), "--user", "no-such-user", "--text", "space films", "--k", "3")
    assert proc.returncode == 0, proc.stderr
    assert "Recommendations" in proc.stdout
    err = " ".join(proc.stderr.split())
    assert "note: user 'no-such-user' has no history" in err
    assert "note: popularity does not read free text" in err
    assert "Traceback" not in proc.stderr
    quiet = fewrec("recommend", str(out), "--user", "1", "--k", "3")
    assert quiet.returncode == 0 and "note:" not in quiet.stderr


def test_cli_recommend_titles_say_what_they_matched(tmp_path):
    """A title as the table prints it ("Title (year)") is an exact match; a partial one names
    the item it took and the others it matched; an empty one is an error; --explain adds
    reasons and the table shows item ids (what --item takes)."""
    out = tmp_path / "pop"
    assert fewrec("train", "popularity", "--output", str(out)).returncode == 0
    proc = fewrec("recommend", str(out), "--title", "Star Wars (1977)", "--title", "the", "--explain")
    assert proc.returncode == 0, proc.stderr
    err = " ".join(proc.stderr.split())
    # the others with their ids: one title can name two items
    # (a prefix at a word's end first: "the" is the word, not Theodore Rex)
    assert (
        "'the' taken as The Innocent (1994) (item 643); it also matches 'The Deadly Cure' (item 1358)" in err
    )
    assert "Star Wars" not in err  # exact: no note
    table = proc.stdout
    assert "reason" in table and "Popular" in table
    # the columns as in --format json/csv and in Python: item (the id), label, score, reason
    assert "┃  # ┃ item ┃ label" in table, table
    assert "Star Wars (1977)" not in table  # in the history, so excluded
    assert "│ 258  │ Contact (1997)" in table  # the id column
    empty = fewrec("recommend", str(out), "--title", " ")
    assert empty.returncode == 2 and "an empty title matches every item" in empty.stderr


def test_cli_items_without_a_title_are_labelled_by_id(tmp_path):
    """An untitled item crashed --title (a float NaN has no .lower()) and read "nan" in the
    table and the explanations; it is labelled by its id and matches no title."""
    (tmp_path / "it.csv").write_text("item_id,title\nx,Xylo\ny,\nz,Zed\n")
    (tmp_path / "in.csv").write_text("user_id,item_id\na,x\na,y\nb,x\nb,z\nc,y\nc,z\n")
    out = tmp_path / "m"
    args = ["--interactions", str(tmp_path / "in.csv"), "--items", str(tmp_path / "it.csv")]
    assert fewrec("train", "itemknn", "--output", str(out), *args).returncode == 0
    by_title = fewrec("recommend", str(out), "--title", "Xylo", "--explain")
    assert by_title.returncode == 0, by_title.stderr
    assert "nan" not in by_title.stdout and "│ y " in by_title.stdout
    by_item = fewrec("recommend", str(out), "--item", "y", "--explain")
    assert by_item.returncode == 0 and "nan" not in by_item.stdout and "liked y" in by_item.stdout


def test_cli_train_into_a_used_folder(tmp_path):
    """Training into a saved model's folder replaces it (with a note) and leaves nothing of the
    old one behind (its item titles would label the new model's items); a folder of other
    files is refused."""
    out = tmp_path / "m"
    assert fewrec("train", "popularity", "--output", str(out)).returncode == 0
    assert (out / "items.parquet").exists()
    inter = tmp_path / "i.csv"
    inter.write_text("user_id,item_id\nu1,2\nu1,3\nu2,3\n")
    proc = fewrec(
        "train", "popularity", "--output", str(out), "--interactions", str(inter), "--rating-col", ""
    )
    assert proc.returncode == 0, proc.stderr
    assert "replacing the model saved in" in " ".join(proc.stderr.split())
    assert not (out / "items.parquet").exists()
    rec = fewrec("recommend", str(out), "--item", "2")
    assert rec.returncode == 0 and "GoldenEye" not in rec.stdout
    other = tmp_path / "docs"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    refused = fewrec("train", "popularity", "--output", str(other))
    assert refused.returncode == 2 and "other files in it" in refused.stderr
    assert (other / "notes.txt").read_text() == "mine"
    # a saved model with the user's own files beside it: replacing the model deleted them
    (out / "eval").mkdir()
    (out / "eval" / "ndcg.txt").write_text("0.35")
    refused = fewrec("train", "popularity", "--output", str(out))
    said = " ".join(refused.stderr.split())
    assert refused.returncode == 2 and "holds a saved model and other files (eval)" in said, said
    assert "Training" not in said and (out / "eval" / "ndcg.txt").read_text() == "0.35"


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark_script(name: str):
    """A script of ``benchmarks/`` imported as a module (they are not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_replace_rows_swaps_a_model_only_on_the_same_splits():
    """benchmarks/replace_rows.py: a table with a model's rows swapped for themselves is the
    same table (summary, gains and all); a run whose baseline differs is refused."""
    import copy

    mod = benchmark_script("replace_rows")
    for name in ("cold-user.json", "cold-user-earliest-seeds.json"):
        old = json.loads((BENCHMARKS / name).read_text())
        same = mod.replace_rows(copy.deepcopy(old), copy.deepcopy(old), ["kshot-ridge"])
        assert json.dumps(same, sort_keys=True) == json.dumps(old, sort_keys=True)
        # as a table recorded before runs had split fingerprints (the next test checks those)
        for key in ("split_fingerprint", "split_fingerprint_per_seed"):
            old["settings"].pop(key, None)
        other = copy.deepcopy(old)
        for run in other["runs"].values() if "runs" in other else [other["models"]]:
            run["popularity"]["K5/ndcg@10"] += 0.01
        with pytest.raises(ConfigError, match="not the same splits"):
            mod.replace_rows(other, copy.deepcopy(old), ["kshot-ridge"])


def test_split_fingerprints_tell_splits_apart_and_replace_rows_checks_them():
    """replace_rows told the splits apart by popularity's results alone, which are 0 on every
    cold-item split: a run of seed 1 went into seed 0's table. Runs now carry a fingerprint of
    their split (kept per seed in a seeds table); without one, random stands in for a baseline
    that scores 0, and a run with other ``--set`` settings is refused."""
    import copy

    mod = benchmark_script("replace_rows")
    a = run_benchmark("cold-user", ["popularity"], seed=0, shots=[5], progress=False)
    again = run_benchmark("cold-user", ["itemknn"], seed=0, shots=[5], progress=False)
    b = run_benchmark("cold-user", ["popularity"], seed=1, shots=[5], progress=False)
    fp = a["settings"]["split_fingerprint"]
    assert fp == again["settings"]["split_fingerprint"] != b["settings"]["split_fingerprint"]
    # one per K: a run of other shots vouches for the K both have
    wider = run_benchmark("cold-user", ["popularity"], seed=0, shots=[5, 0], progress=False)
    assert wider["settings"]["split_fingerprint"]["K5"] == fp["K5"]
    assert mod.replace_rows(copy.deepcopy(wider), copy.deepcopy(a), ["popularity"])["models"]
    merged = combine_seeds(split_runs(a) + split_runs(b))
    assert [r["settings"]["split_fingerprint"] for r in split_runs(merged)] == [
        fp,
        b["settings"]["split_fingerprint"],
    ]
    unstamped = copy.deepcopy(b)  # a run from before runs had one: the others keep theirs
    unstamped["settings"].pop("split_fingerprint")
    kept = split_runs(combine_seeds(split_runs(a) + split_runs(unstamped)))
    assert kept[0]["settings"]["split_fingerprint"] == fp and "split_fingerprint" not in kept[1]["settings"]
    other = copy.deepcopy(a)
    other["settings"]["split_fingerprint"] = b["settings"]["split_fingerprint"]
    with pytest.raises(ConfigError, match="split of seed 0 differs"):
        mod.replace_rows(other, copy.deepcopy(a), ["popularity"])

    old = json.loads((BENCHMARKS / "cold-item.json").read_text())
    old["settings"].pop("split_fingerprint")  # as recorded before runs had one (rows rerun since add it)
    moved = copy.deepcopy(old)  # popularity's 0s say nothing; random's figures do
    moved["models"]["random"]["recall@10"] += 0.0001
    with pytest.raises(ConfigError, match="random differs"):
        mod.replace_rows(moved, copy.deepcopy(old), ["ensemble"])
    with pytest.raises(ConfigError, match="cannot tell"):
        mod.replace_rows(copy.deepcopy(old), copy.deepcopy(old), ["ensemble", "random"])
    assert mod.replace_rows(copy.deepcopy(old), copy.deepcopy(old), ["ensemble"]) == old
    with pytest.raises(ConfigError, match="settings .--set. differ"):
        mod.replace_rows({**old, "configs": {"ensemble": {"tune": False}}}, copy.deepcopy(old), ["ensemble"])
    # another model's overrides are no matter for the rows replaced
    assert mod.replace_rows({**old, "configs": {"ease": {"l2": 100.0}}}, copy.deepcopy(old), ["ensemble"])


def test_the_training_side_of_a_split_is_fingerprinted_and_checked():
    """An audit: a split's fingerprint hashed its test side only, so a change of the validation
    draw (which shapes the training set) with the same test users passed replace_rows. Runs now
    carry a fingerprint of their training interactions too, kept per seed, and checked."""
    import copy

    mod = benchmark_script("replace_rows")
    a = run_benchmark("cold-user", ["popularity"], seed=0, shots=[5], progress=False)
    b = run_benchmark("cold-user", ["popularity"], seed=1, shots=[5], progress=False)
    warm = run_benchmark("warm", ["popularity"], seed=0, progress=False)
    fp = a["settings"]["train_fingerprint"]
    assert len(fp) == 16 and fp != b["settings"]["train_fingerprint"] != warm["settings"]["train_fingerprint"]
    merged = combine_seeds(split_runs(a) + split_runs(b))
    assert [r["settings"]["train_fingerprint"] for r in split_runs(merged)] == [
        fp,
        b["settings"]["train_fingerprint"],
    ]
    other = copy.deepcopy(a)  # the same test users, another training set
    other["settings"]["train_fingerprint"] = b["settings"]["train_fingerprint"]
    with pytest.raises(ConfigError, match="training set of seed 0 differs"):
        mod.replace_rows(other, copy.deepcopy(a), ["popularity"])
    unstamped = copy.deepcopy(a)  # a table from before runs had one: the test side vouches
    unstamped["settings"].pop("train_fingerprint")
    assert mod.replace_rows(copy.deepcopy(a), unstamped, ["popularity"])["models"]


def test_replace_rows_keeps_one_footer_and_takes_the_new_runs_split_counts(tmp_path, monkeypatch):
    """benchmarks/replace_rows.py rewrote a table's footer (its test-user counts) below the new
    one, so each replacement added another; and a table recorded before the ratio of test to
    training users was kept got no corrected intervals, though the new run of the same splits has
    it."""
    import copy
    import shutil
    import sys

    mod = benchmark_script("replace_rows")
    old = json.loads((BENCHMARKS / "cold-user-earliest-seeds.json").read_text())
    old["settings"].pop("test_train_ratio", None)
    new = copy.deepcopy(old)
    new["settings"]["test_train_ratio"] = 0.3
    into = copy.deepcopy(old)
    got = mod.replace_rows(new, into, ["ensemble"])
    assert all("ci_corrected" in g for g in got["gain"].values())
    assert got["settings"]["test_train_ratio"] == pytest.approx(0.3)
    assert into == old  # (the table it was given is not changed)

    table = tmp_path / "t.json"
    table.write_text(json.dumps(old))
    shutil.copy(BENCHMARKS / "cold-user-earliest-seeds.md", table.with_suffix(".md"))
    (tmp_path / "new.json").write_text(json.dumps(new))
    argv = ["replace_rows", str(tmp_path / "new.json"), "--into", str(table), "--models", "ensemble"]
    monkeypatch.setattr(sys, "argv", argv)
    for _ in range(2):
        mod.main()
    md = table.with_suffix(".md").read_text()
    assert md.count("\ntest users") == 1 and "corrected [" in md
    assert "Rerun on 2026-12-04" in md  # the notes below the table are kept


def test_tallrec_reads_a_samples_not_liked_items_as_dislikes():
    """`tallrec_scores` gave every model a sample's not-liked history items as they were, so a
    model that does not read ratings took them for likes; they are now dislikes, as when a
    new user is served: such a model scores the sample from its liked items alone."""
    import scipy.sparse as sp

    from fewrec.data.movielens import load_dataset
    from fewrec.data.splits import tallrec_split
    from fewrec.eval.evaluate import tallrec_scores
    from fewrec.models import make_model
    from fewrec.models.base import QueryBatch

    split = tallrec_split(load_dataset())
    model = make_model("itemknn").fit(split.train_dataset(split.shots(64, 0)))
    samples = split.valid
    got = tallrec_scores(model, samples)
    hist = samples.history_matrix(model.n_items).tocsr()
    liked = hist.copy()
    liked.data = np.where(hist.data > 1.5, model.fitted.like_rating, 0.0).astype(np.float32)
    liked.eliminate_zeros()
    alone = model.score_batch(QueryBatch(np.full(len(samples), -1), sp.csr_matrix(liked)))
    np.testing.assert_allclose(got, alone[np.arange(len(samples)), samples.items], rtol=1e-6)
    assert (hist.data <= 1.5).any()  # the samples do hold not-liked items


def test_tallrec_pair_scores_read_the_samples_as_tallrec_scores_does():
    """`fewrec.models.lm.tallrec_pair_scores` said it built the same queries as
    `tallrec_scores`, but gave a model that does not read ratings a sample's not-liked items as
    likes (the fix above had not reached it): the two now score every sample alike."""
    from fewrec.data.movielens import load_dataset
    from fewrec.data.splits import tallrec_split
    from fewrec.eval.evaluate import tallrec_scores
    from fewrec.models import make_model
    from fewrec.models.lm import tallrec_pair_scores

    split = tallrec_split(load_dataset())
    model = make_model("itemknn").fit(split.train_dataset(split.shots(64, 0)))
    samples = split.valid.take(np.arange(0, len(split.valid), 5))
    np.testing.assert_allclose(tallrec_pair_scores(model, samples), tallrec_scores(model, samples), rtol=1e-6)


def _own_data(n_users=40, per_user=lambda u: 8, n_items=30, users=None, seed=0):
    """Small data of one's own (not MovieLens): ``per_user(u)`` interactions of user u, rated
    1-5, in time order; ``users``: an optional user table keyed by user_id."""
    from fewrec.data.loaders import load_interactions

    rng = np.random.default_rng(seed)
    rows = [
        (f"u{u}", f"i{i}", int(rng.integers(1, 6)), 1000 + u * 100 + j)
        for u in range(n_users)
        for j, i in enumerate(rng.choice(n_items, per_user(u), replace=False))
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return load_interactions(frame, users=users, name="own")


def test_default_cold_user_models_leave_out_popularity_segment_without_an_age_field(monkeypatch):
    """popularity-segment (a default cold-user model) segments by age: on data without that user
    field the default benchmark failed partway ("popularity segment_by names 'age', not a user
    field ([])"). A default is left out, with the reason; one asked for fails up front, with a fix."""
    from fewrec.eval import benchmark

    monkeypatch.setitem(benchmark.DEFAULT_MODELS, "cold-user", ["popularity", "popularity-segment"])
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(40)], "country": ["US", "FR"] * 20})
    data = _own_data(users=users)
    result = run_benchmark("cold-user", dataset=data, shots=[1], progress=False)
    assert list(result["models"]) == ["popularity"]
    why = result["settings"]["models_left_out"]["popularity-segment"]
    assert "['age']" in why
    assert why.endswith(
        """Fix: to run it, name it in --models and segment by the data's user fields, e.g. --set """
        """'popularity-segment.segment_by=["country"]' (or popularity-segment.segment_by=auto """
        """for all of them)"""
    )
    with pytest.raises(ConfigError, match="not a user field") as caught:
        run_benchmark("cold-user", ["popularity-segment"], dataset=data, shots=[1], progress=False)
    assert (
        """Fix: segment by the data's user fields, e.g. --set 'popularity-segment.segment_by=["country"]'"""
        in str(caught.value)
    )
    with pytest.raises(ConfigError, match="Fix: give --users a table with the field 'age'"):
        run_benchmark("cold-user", ["popularity-segment"], dataset=_own_data(), shots=[1], progress=False)
    # the data's own field, asked for: it runs
    configs = {"popularity-segment": {"segment_by": ["country"]}}
    ok = run_benchmark("cold-user", dataset=data, shots=[1], configs=configs, progress=False)
    assert list(ok["models"]) == ["popularity", "popularity-segment"]
    assert "models_left_out" not in ok["settings"]


def test_seeds_give_no_gain_where_the_baseline_scores_0(recwarn):
    """On cold-item popularity can score 0 (it cannot rank cold items): the seeds' gains were
    +inf% / +nan% with numpy's "invalid value encountered" warning; one split gives no gain
    there (`add_gains`), and neither do its seeds now."""

    def run(seed, base):
        models = {"popularity": {"recall@20": base}, "random": {"recall@20": 0.1}}
        return {
            "protocol": "cold-item",
            "dataset": "own",
            "seed": seed,
            "settings": {"test_train_ratio": 0.2},
            "machine": {},
            "models": models,
        }

    doc = combine_seeds([run(0, 0.0), run(1, 0.0)], "popularity")
    assert doc["gain"] == {} and "gain over" not in markdown_table(doc)
    assert "inf" not in markdown_table(doc) and "nan" not in markdown_table(doc)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    doc = combine_seeds([run(0, 0.05), run(1, 0.0)], "popularity")  # 0 on one seed: no gain
    assert doc["gain"] == {}
    doc = combine_seeds([run(0, 0.05), run(1, 0.1)], "popularity")
    assert doc["gain"]["random"]["per_seed"] == pytest.approx([1.0, 0.0])


def test_gain_without_an_interval_on_few_test_users_is_no_ci_and_json_null(tmp_path):
    """Bootstrap draws where the baseline scores 0 made every gain interval [+nan%, +nan%] on a
    few test users, and the JSON held bare NaN (not JSON to strict readers)."""
    from fewrec.eval.benchmark import add_gains

    few = [0.0] * 7 + [0.5]
    doc = {
        "protocol": "cold-user",
        "dataset": "own",
        "seed": 0,
        "settings": {"shots": [5]},
        "machine": {},
        "models": {
            "popularity": {"K5/ndcg@10": 0.0625, "K5/ndcg@10/per_user": few, "diversity@10": float("nan")},
            "ease": {"K5/ndcg@10": 0.125, "K5/ndcg@10/per_user": [0.5] + few[1:]},
        },
    }
    add_gains(doc, "popularity")
    assert doc["models"]["ease"]["K5/ndcg@10_gain"] == pytest.approx(1.0)
    assert doc["models"]["ease"]["K5/ndcg@10_gain_ci_low"] is None
    table = markdown_table(doc)
    assert "+100.0% [no CI]" in table and "nan" not in table
    path = write_result(doc, tmp_path / "r.json")

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    back = json.loads(path.read_text(), parse_constant=refuse)
    assert back["models"]["popularity"]["diversity@10"] is None
    # such a run still merges with another (a null is a value no run has)
    other = {**json.loads(path.read_text()), "seed": 1}
    merged = combine_seeds([back, other], "popularity")
    assert "diversity@10" not in merged["summary"]["popularity"]


def test_the_table_shows_every_k_asked_for():
    """The table's K columns were fixed (cold-user K0/K1/K5/K20, tallrec K16/K64/K256): other K
    asked for were evaluated but not shown (cold-user --shots 3,10 gave no accuracy column)."""
    data = _own_data(per_user=lambda u: 14)
    cold = run_benchmark("cold-user", ["popularity"], dataset=data, shots=[3, 10], progress=False)
    header = markdown_table(cold).splitlines()[0]
    assert "| K3/ndcg@10 | K10/ndcg@10 | adapt_ms_k5 | train_seconds |" in header
    tallrec = run_benchmark("tallrec", ["random", "like-share"], dataset=data, shots=[8, 32], progress=False)
    assert "| model | K8/auc | K32/auc | train_seconds |" in markdown_table(tallrec)


def test_tallrec_k_the_data_cannot_give_is_left_out_or_refused_before_training(monkeypatch):
    """Default tallrec K = 256 on data of 128 training samples failed after K = 16 and 64 had
    trained ("K must be in 1..128, got 256", no word of --shots). A default K the data cannot give
    is left out (recorded); a K asked for is an error naming --shots, before anything trains."""
    from fewrec.eval import benchmark

    data = _own_data(per_user=lambda u: 14)  # 4 samples a user: 128 to train on
    result = run_benchmark("tallrec", ["random", "like-share"], dataset=data, progress=False)
    assert result["settings"]["shots"] == [16, 64] and result["settings"]["shots_left_out"] == [256]
    assert result["settings"]["n_train"] == 128 and "K64/auc" in result["models"]["like-share"]

    def no_training(*args):
        raise AssertionError("a model trained before the K were checked")

    monkeypatch.setattr(benchmark, "_timed_fit", no_training)
    with pytest.raises(ConfigError, match=r"K = 200: .* 128 training samples.*Fix: .*--shots"):
        run_benchmark("tallrec", ["random"], dataset=data, shots=[8, 200], progress=False)
    with pytest.raises(ConfigError, match="K = 0"):
        run_benchmark("tallrec", ["random"], dataset=data, shots=[0], progress=False)
    small = _own_data(n_users=4, per_user=lambda u: 14, seed=2)  # 16 samples, 12 to train on
    with pytest.raises(ConfigError, match="K = 16: .* 12 training samples"):
        run_benchmark("tallrec", ["random"], dataset=small, progress=False)


def test_the_table_says_how_many_test_users_each_column_rests_on(tmp_path):
    """The n behind each number was only in the JSON's settings, and the K columns can rest on
    different users (K0 on every test user, K5 on those with more than 5 interactions)."""
    data = _own_data(per_user=lambda u: 4 if u % 2 else 9)
    result = run_benchmark("cold-user", ["popularity"], dataset=data, shots=[0, 5], progress=False)
    n = result["settings"]["n_test_users"]
    assert n["K0"] > n["K5"] > 0
    table = markdown_table(result)
    assert f"\n\ntest users: K0 {n['K0']}, K5 {n['K5']}\n" in table
    assert f"Note: {n['K5']} test users behind some numbers (under 20)" in table
    assert "the K columns differ in their test users (revealing K needs" in table
    # the same users in each column: their targets still differ (K5 leaves out the 5 revealed)
    same = run_benchmark("cold-user", ["popularity"], dataset=_own_data(), shots=[0, 5], progress=False)
    assert len(set(same["settings"]["n_test_users"].values())) == 1
    assert "the K columns differ in their targets (a user's items left after" in markdown_table(same)
    path = write_result(result, tmp_path / "r.json")
    assert f"test users: K0 {n['K0']}, K5 {n['K5']}" in path.with_suffix(".md").read_text()
    # one K: the same users everywhere; enough of them: no notes
    warm = run_benchmark("warm", ["popularity"], dataset=_own_data(n_users=60), progress=False)
    assert markdown_table(warm).endswith(f"\n\ntest users: {warm['settings']['n_test_users']}")
    # over seeds: each seed's count, and back again when merged apart
    runs = [
        run_benchmark("cold-user", ["popularity"], dataset=data, shots=[0, 5], seed=s, progress=False)
        for s in (1, 4)
    ]
    doc = combine_seeds(runs, "popularity")
    k5 = sorted(r["settings"]["n_test_users"]["K5"] for r in runs)
    assert k5[0] < k5[1]  # these two splits draw other users
    assert f"(per split seed): K0 {n['K0']}, K5 {k5[0]}-{k5[1]}" in markdown_table(doc)
    assert [r["settings"]["n_test_users"] for r in split_runs(doc)] == [
        r["settings"]["n_test_users"] for r in runs
    ]


def test_a_result_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    """A run killed while writing its JSON truncated the result it was replacing."""
    result = run_benchmark("warm", ["popularity"], seed=0, progress=False)
    path = write_result(result, tmp_path / "warm.json")
    before = path.read_text(), path.with_suffix(".md").read_text()
    real = Path.write_text

    def cut_short(self, text, *args, **kwargs):
        real(self, text[: len(text) // 2], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", cut_short)
    with pytest.raises(KeyboardInterrupt):
        write_result(result, tmp_path / "warm.json")
    monkeypatch.undo()
    assert (path.read_text(), path.with_suffix(".md").read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["warm.json", "warm.md"]
    # a link to a result stays a link, to the new result
    (tmp_path / "link.json").symlink_to(path)
    write_result({**result, "seed": 7}, tmp_path / "link.json")
    assert (tmp_path / "link.json").is_symlink() and json.loads(path.read_text())["seed"] == 7


def test_tallrec_gives_an_interval_over_its_users_and_draws_with_the_seed():
    """An audit: tallrec's interval over the test users was computed and dropped (1,000 samples
    from 16 users, no note), and --seed was recorded but every seed drew the same K samples."""
    one = run_benchmark("tallrec", ["popularity", "like-share"], shots=[16], progress=False)
    row = one["models"]["like-share"]
    assert row["K16/auc_ci_low"] < row["K16/auc"] < row["K16/auc_ci_high"]
    assert row["K16/auc_ci_high"] - row["K16/auc_ci_low"] > 0.05  # 16 users: wide
    table = markdown_table(one)
    assert f"| like-share | {row['K16/auc']:.4f} [{row['K16/auc_ci_low']:.3f}, " in table
    assert "test samples: 1000, from 16 users" in table and "Note: 16 test users" in table
    other = run_benchmark("tallrec", ["popularity"], shots=[16], seed=5, progress=False)
    assert other["settings"]["seeds"] == [5, 6, 7] and one["settings"]["seeds"] == [0, 1, 2]
    assert other["models"]["popularity"]["K16/auc"] != one["models"]["popularity"]["K16/auc"]


def test_merged_seeds_say_which_models_they_drop_and_gains_stop_at_minus_100(tmp_path, caplog):
    """An audit: merge-seeds dropped a model missing from one run without a word; a corrected
    gain interval reached -100.6%; on cold-item the gain column vanished unexplained."""
    a = run_benchmark("warm", ["random", "popularity", "itemknn"], seed=0, progress=False)
    b = run_benchmark("warm", ["random", "popularity"], seed=1, progress=False)
    merged = combine_seeds([a, b])
    assert "itemknn" not in merged["summary"] and merged["settings"]["models_left_out_of_some_runs"] == [
        "itemknn"
    ]
    assert "not run on every seed: itemknn" in caplog.text
    assert merged["gain"]["random"]["ci_corrected"][0] >= -1.0 and merged["gain"]["random"]["ci"][0] >= -1.0
    table = markdown_table(merged)  # the ± cells are plain t-intervals, the gain's is corrected: said
    assert "Cells: mean ± the half-width of the 95% t-interval over the split seeds, not corrected" in table
    assert table.count("Cells: ") == 1
    assert "gain interval of random reached below -100%" in table  # (it was clipped without a word)
    both = combine_seeds([a, run_benchmark("warm", ["popularity"], seed=1)])
    assert "below -100%" not in markdown_table(both)
    cold = run_benchmark("cold-item", ["random", "popularity"], progress=False)
    assert "no gains over popularity" in markdown_table(cold)


def test_runs_on_other_item_text_do_not_merge(ml100k):
    """An audit: the data fingerprint covers the interactions and ids only, so runs made with
    other item text or user side info (which text and segment models read) merged silently."""
    from fewrec.data.dataset import Dataset

    retitled = Dataset(
        ml100k.interactions,
        ml100k.users,
        ml100k.items,
        ml100k.item_info.assign(title="x"),
        ml100k.user_info,
        name=ml100k.name,
    )
    assert retitled.fingerprint() == ml100k.fingerprint()
    assert retitled.fields_fingerprint() != ml100k.fields_fingerprint()
    a = run_benchmark("warm", ["popularity"], seed=0, dataset=ml100k, progress=False)
    b = run_benchmark("warm", ["popularity"], seed=1, dataset=retitled, progress=False)
    with pytest.raises(ConfigError, match="different item or user fields"):
        combine_seeds([a, b])
    c = run_benchmark("warm", ["popularity"], seed=1, dataset=ml100k, progress=False)
    assert combine_seeds([a, c])["fields_fingerprint"] == ml100k.fields_fingerprint()


def test_progress_lines_inside_a_task_show_above_the_benchmark_bar():
    """An audit: a tallrec task of an LM model takes minutes, and the bar stood at 0% through it;
    the LM's progress lines (logged at INFO) never showed, the benchmark's logging at WARNING."""
    import io
    import logging

    from rich.console import Console
    from rich.progress import Progress

    from fewrec.present import progress_lines
    from fewrec.text.encoder import PROGRESS

    logger, out = logging.getLogger("fewrec.lm.model"), io.StringIO()
    root = logging.getLogger("fewrec")
    before = (root.level, root.propagate)
    with Progress(console=Console(file=out, width=200)) as bar, progress_lines(bar.console):
        logger.info("LM scoring: 3 of 9 prompts (0.5/s, ~12 s left)", extra={PROGRESS: True})
        logger.info("a stage of no interest here")
        logger.warning("something the user must see")
    said = out.getvalue()
    assert "note: LM scoring: 3 of 9 prompts" in said  # (as the CLI's notes read)
    assert "warning: something the user must see" in said
    assert "a stage of no interest" not in said
    assert (root.level, root.propagate) == before and not root.handlers


def test_a_benchmark_into_a_log_says_which_model_it_is_on():
    """An audit: `fewrec benchmark ... > log 2>&1` was 8 minutes of nothing, then the table (a
    progress bar draws nothing off a terminal)."""
    proc = fewrec("benchmark", "--protocol", "warm", "--models", "random,popularity")
    assert proc.returncode == 0, proc.stderr
    assert "warm: random ...\nwarm: popularity ..." in proc.stderr
    assert "| popularity |" in proc.stdout and "..." not in proc.stdout  # (stdout: the table alone)


def test_benchmark_options_a_run_ignored_or_refused_say_so(tmp_path):
    """An audit of `fewrec benchmark`: no gain column without a word (cold-user without K = 5,
    over seeds on cold-item), "earliest" read from data with no times without a word, K given
    twice run twice, a result path under a file failed only once the run was done, and the
    MovieLens-1M prior kept among another dataset's default models on Ray."""
    from fewrec.data.loaders import load_interactions
    from fewrec.eval.benchmark import check_request, check_result_path, fit_to_data

    data = _own_data()
    result = run_benchmark("cold-user", ["popularity", "itemknn"], dataset=data, shots=[3], progress=False)
    assert "K5/ndcg@10_gain" not in result["models"]["itemknn"]
    assert "no gains over popularity: its headline metric K5/ndcg@10 needs K = 5" in markdown_table(result)
    runs = [
        run_benchmark("cold-item", ["popularity", "random"], dataset=data, seed=s, progress=False)
        for s in (0, 1)
    ]
    doc = combine_seeds(runs, "popularity")
    assert not doc["gain"] and "it scores 0 on recall@20 on some split seed" in markdown_table(doc)
    assert "cannot rank cold items" in doc["no_gains"]
    # no time column: the rows' order stood for time
    frame = data.interactions.assign(
        user_id=[data.users.ids[u] for u in data.interactions["user"]],
        item_id=[data.items.ids[i] for i in data.interactions["item"]],
    )[["user_id", "item_id", "rating"]]
    untimed = load_interactions(frame, columns={"timestamp": None})
    assert not untimed.timed and data.timed
    result = run_benchmark("cold-user", ["popularity"], dataset=untimed, shots=[1], progress=False)
    assert "the data has no timestamps, so 'earliest' reveals" in markdown_table(result)
    random = run_benchmark(
        "cold-user", ["popularity"], dataset=untimed, shots=[1], reveal="random", progress=False
    )
    assert "no timestamps" not in markdown_table(random)
    for shots, said in (([5, 5], "names a K twice"), ([-2], "whole numbers >= 0"), ([1.5], "whole numbers")):
        with pytest.raises(ConfigError, match=said):
            check_request("cold-user", ["popularity"], None, shots, "earliest", None)
    (tmp_path / "cu.json").write_text("{}")
    with pytest.raises(ConfigError, match="cu.json is a file, not a folder"):
        check_result_path(tmp_path / "cu.json" / "res.json")
    names = ["like-share", "like-clf@movielens-1m"]
    kept, left_out = fit_to_data(names, data, {}, defaults=True)
    assert kept == ["like-share"] and "learns its prior from MovieLens-1M" in left_out[names[1]]
    assert fit_to_data(names, data, {}, defaults=False)[0] == names  # asked for: run


def test_cli_benchmark_baseline_options(tmp_path):
    """--seeds refused models without popularity ("baseline 'popularity' is not among the
    models"), where one run took them; --baseline on tallrec was ignored without a word."""
    proc = fewrec("benchmark", "--protocol", "warm", "--models", "random,itemknn", "--seeds", "0,1")
    assert proc.returncode == 0, proc.stderr
    assert "| itemknn |" in proc.stdout and "gain" not in proc.stdout
    proc = fewrec("benchmark", "--protocol", "tallrec", "--models", "like-share", "--baseline", "like-share")
    assert proc.returncode == 2 and "--baseline applies to the ranking protocols" in proc.stderr


def test_cli_benchmark_notes_a_small_count_scale_and_zeros(tmp_path):
    """An audit: `train` said that counts 1-9 read as stars (1-3 are dislikes) and that 0s are
    trained on as interest; `benchmark` said neither, while a note-less run on such counts found
    0.463 against 0.631 read as implicit data, and held-out 0s counted as hits."""
    rng = np.random.default_rng(0)
    rows = [(u, i, int(rng.integers(0, 10))) for u in range(60) for i in rng.choice(40, 12, replace=False)]
    path = tmp_path / "buys.csv"
    pd.DataFrame(rows, columns=["cid", "sku", "n"]).to_csv(path, index=False)
    cols = ["--user-col", "cid", "--item-col", "sku", "--rating-col", "n", "--time-col", ""]
    args = ["benchmark", "--protocol", "warm", "--models", "popularity", "--output", str(tmp_path / "r.json")]
    proc = fewrec(*args, "--interactions", str(path), *cols)
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stderr.split())
    assert "ratings 0-9 read as a star scale: 3.6 or less is a dislike" in said
    assert "interactions are rated 0, a dislike in a query, yet held-out ones count as hits" in said
    kept = fewrec(*args, "--interactions", str(path), *cols, "--min-rating", "1")
    assert kept.returncode == 0 and "held-out ones count as hits" not in kept.stderr


def test_new_items_benchmark_leaves_out_what_the_user_rated_of_the_new_items():
    """benchmarks/new_items.py left a user's ratings of new films that were not targets in the
    ranking, as misses (the known films' were out, as history): a list of everything the user
    rated gave new films 48% of its top 20 for 20% of the targets. Its recall divided by
    min(targets, 20), where every other fewrec Recall@20 divides by the targets."""

    from fewrec.data.movielens import load_movielens_100k
    from fewrec.data.splits import rows_matrix

    mod = benchmark_script("new_items")
    data = load_movielens_100k()
    train, test, new = mod.mixed_split(data, 0)
    rated = rows_matrix(data.interactions, test.users, data.n_items).toarray() > 0
    targets, out = test.targets.toarray() > 0, test.exclude.toarray() > 0
    assert not (rated & ~targets & ~out).any()  # every rating is a target or out of the ranking
    assert not (targets & out).any() and (out & new).any()
    taste = np.where(out, -np.inf, rated + 1e-6 * np.random.default_rng(0).random(rated.shape))
    got = mod.measure(taste.astype(np.float32), test, new)
    assert abs(got["new_share@20"] - got["new_share_of_targets"]) < 0.01
    n = targets.sum(axis=1)
    assert got["recall@20"] == pytest.approx(np.mean(np.minimum(n, 20) / n))


def test_new_items_benchmark_counts_tied_scores_in_expectation():
    """benchmarks/new_items.py took its top 20 by argpartition, so tied scores were cut by
    position: a model scoring every item alike read as a list of whichever items came first."""

    from fewrec.data.movielens import load_movielens_100k

    mod = benchmark_script("new_items")
    train, test, new = mod.mixed_split(load_movielens_100k(), 0)
    out = test.exclude.toarray() > 0
    flat = np.where(out, -np.inf, 1.0).astype(np.float32)
    got = mod.measure(flat, test, new)
    open_items = (~out).sum(axis=1)
    targets = test.targets.toarray() > 0
    assert got["recall@20"] == pytest.approx(np.mean(20 / open_items))
    assert got["new_share@20"] == pytest.approx(np.mean((~out & new).sum(axis=1) / open_items))
    assert got["new_hits_per_user"] == pytest.approx(np.mean(20 * (targets & new).sum(axis=1) / open_items))


def test_rivals_counts_lightfms_tied_scores_in_expectation():
    """rivals.py broke LightFM's tied scores by the lower item index (LightFM without item ids
    ties every item of one genre set and decade), where fewrec's rows count ties in
    expectation; its per-user values are a pure function of the scores (no LightFM needed)."""
    from fewrec.data.movielens import load_dataset
    from fewrec.data.splits import cold_user_split

    mod = benchmark_script("rivals")
    es = cold_user_split(load_dataset(), shots=5, seed=0).test
    flat = np.zeros((len(es), es.targets.shape[1]))  # every item tied
    got = mod.per_user(flat, es)
    open_items = es.targets.shape[1] - np.diff(es.exclude.indptr)
    assert got["recall@20"] == pytest.approx(20 / open_items)
    assert got["recall@10"] == pytest.approx(10 / open_items)


def test_rivals_refresh_repairs_lightfms_recorded_rows_with_the_tables_new_ones(tmp_path, monkeypatch):
    """`rivals.py --refresh` (after a rerun of the protocol tables) re-reads fewrec's rows and
    pairs each of them with LightFM's recorded per-user values, refitting nothing; LightFM's
    figures stay, and a table on another split (other test users) is refused."""
    mod = benchmark_script("rivals")
    rng = np.random.default_rng(0)
    theirs = rng.random(40)
    new = {m: rng.random(40) for m in ("fewshot", "ensemble", "ensemble-text")}
    monkeypatch.setattr(mod, "HERE", tmp_path)
    models = {
        m: {"recall@20": float(v.mean()), "cold_only/recall@20": 0.5, "recall@20/per_user": v.tolist()}
        for m, v in new.items()
    }
    (tmp_path / "cold-item.json").write_text(json.dumps({"models": models}))
    lfm = {
        "recall@20": float(theirs.mean()),
        "cold_only/recall@20": 0.2,
        "chosen": {"item_identity": False, "components": 64, "epochs": 20},
        "recall@20/per_user": theirs.tolist(),
        "ensemble_gain": 9.0,
        "ensemble_gain_ci": [8.0, 10.0],
    }
    doc = {
        "note": "kept",
        "protocols": {
            "cold-item": {"fewshot": {"recall@20": 0.9, "cold_only/recall@20": 0.9}, "lightfm": dict(lfm)}
        },
    }
    got = mod.refresh(json.loads(json.dumps(doc)))
    rows = got["protocols"]["cold-item"]
    assert rows["fewshot"]["recall@20"] == pytest.approx(new["fewshot"].mean())
    assert rows["lightfm"]["recall@20"] == lfm["recall@20"]
    for m, v in new.items():
        assert rows["lightfm"]["gains"][m]["gain"] == pytest.approx(v.mean() / theirs.mean() - 1)
    assert rows["lightfm"]["ensemble_gain"] == pytest.approx(new["ensemble"].mean() / theirs.mean() - 1)
    lo, hi = rows["lightfm"]["ensemble_gain_ci"]
    assert lo < rows["lightfm"]["ensemble_gain"] < hi
    assert "Over `lightfm` (Recall@20, paired): fewshot" in mod.markdown(got) and "\nkept\n" in mod.markdown(
        got
    )
    lfm["recall@20/per_user"] = theirs[:-1].tolist()
    doc["protocols"]["cold-item"]["lightfm"] = lfm
    with pytest.raises(SystemExit, match="not the same split"):
        mod.refresh(doc)


def test_text_queries_scores_new_users_as_the_protocol_does():
    """benchmarks/text_queries.py gave a new user's revealed 1-2 star films to the models as
    likes and broke tied scores by item index; the protocol reads them as dislikes and counts
    ties in expectation (item-kNN, random K5: 0.6224 against the protocol's 0.6186)."""

    from fewrec.data.movielens import load_dataset
    from fewrec.data.splits import cold_user_split
    from fewrec.eval.evaluate import evaluate_ranking, user_info_rows
    from fewrec.models import make_model

    mod = benchmark_script("text_queries")
    split = cold_user_split(load_dataset(), shots=5, seed=0, random_shots=True)
    model = make_model("itemknn").fit(split.train)
    got = mod.ndcg10(model, split.test, user_info_rows(split.train.user_info, split.test.users), None)
    assert got == pytest.approx(evaluate_ranking(model, split.test, split.train).values["ndcg@10"], abs=1e-9)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc")
def test_benchmark_refuses_an_output_it_cannot_write_before_the_run(tmp_path):
    """check_result_path asked os.access, which says yes to root in any folder and in /proc:
    `--output /proc/x/r.json` ran the whole benchmark and then failed; `--output /dev/stdout`
    failed on a pipe, and on a file took the JSON over the table, the table going to
    /dev/stdout.md. It now makes the folder and opens the files, as `scale recommend` did."""
    from fewrec.eval.benchmark import check_result_path, check_writable

    cases = [
        ("/proc/x/r.json", "cannot write the result to /proc/x/r.json ("),
        ("/dev/stdout", "is not a file"),
    ]
    for out, said in cases:
        proc = fewrec("benchmark", "--models", "popularity", "--output", out)
        assert proc.returncode == 2 and said in " ".join(proc.stderr.split()), proc.stderr
        assert proc.stdout == ""  # (no table: no run)
    with pytest.raises(ConfigError, match=r"cannot write --output /proc/x/y.parquet \("):
        check_writable(Path("/proc/x/y.parquet"))  # (`scale recommend`'s check)
    assert check_result_path(tmp_path / "new" / "r.json") == tmp_path / "new" / "r.json"
    assert not any(tmp_path.iterdir())  # the probe's folder is not left behind


def test_the_result_path_overwrites_only_a_result_of_ours(tmp_path):
    """An audit: `--output good.csv` replaced the interactions being benchmarked with the JSON,
    and `--output notes.json` would overwrite a notes.md. A file there is overwritten only where
    it is a result (its JSON, or the table beside it)."""
    from fewrec.eval.benchmark import check_result_path

    data = tmp_path / "good.csv"
    data.write_text("user_id,item_id\n1,2\n")
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n")
    for path, named in ((data, "good.csv"), (tmp_path / "notes.json", "notes.md")):
        with pytest.raises(ConfigError, match=rf"{named} is there and is no benchmark result of fewrec's"):
            check_result_path(path)
    assert data.read_text() == "user_id,item_id\n1,2\n" and notes.read_text() == "# my notes\n"
    # a result of ours, or its table alone, is rewritten (a rerun to the same path)
    ours = tmp_path / "r.json"
    ours.write_text(json.dumps({"protocol": "warm", "settings": {}}))
    ours.with_suffix(".md").write_text("# notes, not ours\n")
    assert check_result_path(ours) == ours
    table = tmp_path / "t.md"
    table.write_text("# warm on movielens-100k (seed 0)\n\n| model |\n")
    assert check_result_path(tmp_path / "t.json") == tmp_path / "t.json"


def test_a_refused_benchmark_leaves_no_output_folder_and_a_run_makes_it(tmp_path):
    """The output path was checked first by making its folder: a run then refused for another
    argument (an unknown model) left an empty folder behind. The check removes what it made;
    the run makes the folders when it writes."""
    out = tmp_path / "a" / "b" / "r.json"
    refused = fewrec("benchmark", "--models", "nope", "--output", str(out))
    assert refused.returncode == 2 and "nope" in refused.stderr, refused.stderr
    assert not (tmp_path / "a").exists()
    ran = fewrec("benchmark", "--models", "popularity", "--output", str(out))
    assert ran.returncode == 0 and json.loads(out.read_text())["protocol"] == "warm", ran.stderr
    assert out.with_suffix(".md").read_text().startswith("# warm on movielens-100k")


def test_status_lines_go_to_stderr_and_the_data_to_stdout(tmp_path):
    """`benchmark --output r.json > table.md` ended the table with "wrote r.json", and
    merge-seeds did the same; `train` said "saved ... to" and `data fetch` "ok ... cached at" on
    stdout too. Those lines are on stderr now: stdout holds the table alone, or nothing."""
    out, merged = tmp_path / "r.json", tmp_path / "m.json"
    runs = [
        fewrec("benchmark", "--models", "popularity", "--output", str(out)),
        fewrec("merge-seeds", str(out), "--output", str(merged)),
    ]
    for proc, wrote in zip(runs, (out, merged), strict=True):
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("| model |") and "wrote" not in proc.stdout, proc.stdout
        assert f"wrote {wrote}" in " ".join(proc.stderr.split())
    trained = fewrec("train", "popularity", "--output", str(tmp_path / "m"))
    assert trained.returncode == 0 and trained.stdout == "", trained.stdout
    assert "saved popularity to" in trained.stderr
    fetched = fewrec("data", "fetch")
    assert fetched.returncode == 0 and fetched.stdout == "", fetched.stdout
    assert "movielens-100k cached at" in fetched.stderr


def test_an_unknown_model_lists_the_choices_alike_in_each_command():
    """`train nope` and `benchmark --models nope` printed the choices as a Python list
    (['als', ...]) where `models nope` printed them comma-separated; all three do now."""
    for args in (
        ["train", "nope", "--output", "/no/such/dir/m"],
        ["benchmark", "--models", "nope"],
        ["models", "nope"],
    ):
        proc = fewrec(*args)
        said = " ".join(proc.stderr.split())
        assert proc.returncode == 2 and "unknown model 'nope'. Fix: choose from als, bpr, " in said, said
        assert "[" not in said
    from fewrec.models import make_model

    with pytest.raises(ConfigError) as raised:  # and in Python
        make_model("nope")
    assert "unknown model 'nope'. Fix: choose from als, bpr, " in str(raised.value)
    # a typo is named: of a model, and of a preset where presets are taken
    with pytest.raises(
        ConfigError, match=r"unknown model 'eas'\. Fix: did you mean 'ease'\? Or choose from als"
    ):
        make_model("eas")
    proc = fewrec("benchmark", "--models", "popularty,ensemble-blnd,zzz")
    said = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "did you mean 'popularity' and 'ensemble-blend'? Or choose" in said, said


def test_benchmark_scripts_refuse_bad_arguments_before_running(capsys):
    """`--help`, a typo or `--only zip` (with a space) ran `cold_user_probes.py` in full and
    overwrote its table; `rerank_variants.py` crashed on `--help`; `tallrec_ceiling.py` ran on
    any argument. Each parses its arguments now, and a bad one is an argparse error (exit 2)
    before any work."""
    probes = benchmark_script("cold_user_probes")
    assert probes.parse_args(["--only", "zip,time"]).only == {"zip", "time"}  # with a space too
    bad = [
        (probes.parse_args, ["--only", "zipp"], "unknown probe(s) zipp"),
        (probes.parse_args, ["--only", "ensemble"], "--only ensemble needs --ensemble"),
        (probes.parse_args, ["--onyl=zip"], "unrecognized arguments"),
        (benchmark_script("rerank_variants").parse_args, ["5", "2"], "LAST (2) must be above FIRST (5)"),
        (benchmark_script("tallrec_ceiling").parse_args, ["--weights", "0,a"], "not comma-separated numbers"),
    ]
    for parse, argv, said in bad:
        with pytest.raises(SystemExit) as exit_:
            parse(argv)
        assert exit_.value.code == 2 and said in capsys.readouterr().err, argv


def test_one_test_user_has_no_interval_and_requests_are_checked(tmp_path):
    """An evaluation audit: with one test user the "95% CI" was a point ([-40.9%, -40.9%]) and
    the note said "1 test users"; shots=5 was a TypeError and "10" the K 1 and 0; a model
    named twice was trained twice and shown once."""
    from fewrec.data.loaders import load_interactions
    from fewrec.eval import metrics as M

    assert all(np.isnan(M.bootstrap_ci(np.array([0.3]))))
    rows = [(f"u{u}", f"i{(j * 2 + u) % 15}") for u in range(5) for j in range(9 + u)]
    data = load_interactions(pd.DataFrame(rows, columns=["user_id", "item_id"]))
    result = run_benchmark("cold-user", ["popularity", "itemknn"], dataset=data, shots=[5], progress=False)
    assert result["settings"]["n_test_users"] == {"K5": 1}
    table = markdown_table(result)
    assert (
        "[no CI]" in table
        and "Note: 1 test user behind some numbers" in table
        and "there is no interval" in table
    )
    # the heading names the reveal (a first-run audit: -10.1% here, +19.5% in the demo, unexplained)
    from fewrec.eval.benchmark import write_result

    heading = write_result(result, tmp_path / "r.json").with_suffix(".md").read_text().splitlines()[0]
    assert heading.endswith("(seed 0, earliest reveal)"), heading
    for bad in (5, "10"):
        with pytest.raises(ConfigError, match="shots must be a list of K, e.g. \\[5\\]"):
            run_benchmark("cold-user", ["popularity"], dataset=data, shots=bad, progress=False)
    with pytest.raises(ConfigError, match="models names 'popularity' twice"):
        run_benchmark("warm", ["popularity", "itemknn", "popularity"], dataset=data, progress=False)
