"""`make demo`: the main job end to end on MovieLens-100K."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape

from fewrec.data.movielens import fetch_movielens_100k, load_dataset
from fewrec.eval.benchmark import markdown_table, run_benchmark
from fewrec.models import make_model
from fewrec.models.query import Query
from fewrec.present import match_titles, print_recommendations

DEMO_MODELS = ["popularity", "itemknn", "ease", "dlae", "fewshot-nometa", "fewshot", "ensemble"]
DEMO_SHOTS = [0, 5]
DEMO_TEXT = "I love sci-fi films like Interstellar, with space travel and big ideas, but no horror"
#: "I love space adventure films", for the multilingual encoder (MovieLens' item text is English).
DEMO_TEXT_ZH = "我喜欢太空冒险电影"


def run_demo(
    console: Console, liked_titles: Sequence[str], model: str = "fewshot", text: str = DEMO_TEXT
) -> None:
    """Fetch data, run a compact cold-start benchmark, train, and recommend for new users (one
    of them writing in Chinese, read by the multilingual encoder)."""
    console.rule("1. data")
    path = fetch_movielens_100k()
    data = load_dataset()
    console.print(f"{data!r} (cached at {path})")
    # a typo fails now, not later; a film not in the catalogue can be put in words instead
    matches = match_titles(data.item_info, data.items, liked_titles, text_option="--text")
    for m in matches:
        if m.note:
            console.print(f"[yellow]note:[/yellow] {escape(m.note)}", highlight=False)

    console.rule("2. compact cold-start benchmark (cold-user protocol, full ranking)")
    result = run_benchmark("cold-user", DEMO_MODELS, shots=DEMO_SHOTS, reveal="random")
    console.print(
        markdown_table(result, ["K0/ndcg@10", "K5/ndcg@10", "K5/recall@10", "adapt_ms_k5", "train_seconds"])
    )
    console.print(
        "(NDCG@10 over the full catalogue. K0: a test user reveals nothing, only side info; K5: 5 "
        "random interactions; the rest are the targets. adapt_ms_k5: milliseconds to adapt to one "
        "new user's 5 items. One split seed: the gains over ten are in docs/results.md)",
        highlight=False,
    )

    console.rule(f"3. train {model} on all of {data.name}")
    if model == "fewshot":  # (the table's best is the ensemble: say why this one)
        console.print(
            "fewshot reads items, text and side info and adapts in ~0.1 ms; the ensemble, which "
            "blends it with the ID-only models, ranks better but trains for minutes (fewrec train "
            "ensemble)",
            highlight=False,
        )
    t0 = time.perf_counter()
    rec = make_model(model).fit(data)
    console.print(f"trained in {time.perf_counter() - t0:.1f}s")

    console.rule(escape("4. a new user who liked: " + ", ".join(liked_titles)))
    liked = [i for m in matches for i in (m.item, *m.twins)]
    recs = rec.recommend(Query(items=liked), k=10, explain=True)
    print_recommendations(console, recs, data.item_info, data.items, title="Top-10 for a new user")

    console.rule("5. a new user with no history who wrote one sentence")
    console.print(f'"{text}"', markup=False, highlight=False)  # ("[/]" in it was a MarkupError)
    recs = rec.recommend(Query(text=text), k=10, explain=True)
    print_recommendations(console, recs, data.item_info, data.items, title="Top-10 from text alone")

    console.rule("6. a sentence in Chinese, with the multilingual encoder (content model)")
    console.print(f'"{DEMO_TEXT_ZH}" (I love space adventure films)')
    multi = make_model("content", encoder="multilingual").fit(data)
    recs = multi.recommend(Query(text=DEMO_TEXT_ZH), k=10, explain=True)
    print_recommendations(console, recs, data.item_info, data.items, title="Top-10 from a Chinese sentence")
