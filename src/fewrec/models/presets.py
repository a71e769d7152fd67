"""The benchmark's presets: named configurations of the models, run beside the plain models
(``fewrec benchmark --models fewshot-ranked``). Here, not in `fewrec.eval.benchmark`, so that
`fewrec.models.base.register` can refuse their names without importing the benchmark."""

from __future__ import annotations

from typing import Any

#: Named configurations that the benchmark can run beside the plain models.
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "popularity-segment": ("popularity", {"segment_by": ["age"], "segment_prior": 50.0}),
    "fewshot-ranked": ("fewshot", {"rank_item_item": True}),
    "ensemble-blend": ("ensemble", {"rerank": False}),
    # known users' new items at their text blend, as until 2026-12-07 (`untrained_items`)
    "ensemble-text": ("ensemble", {"untrained_items": "text"}),
}
