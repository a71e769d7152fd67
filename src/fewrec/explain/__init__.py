"""Reasons for recommendations ("recommended because ...").

A reason cites the history items that drove a score and the attributes (genres) the item shares
with them. Citations are measured, not guessed: an item's contribution is how much the score
drops when that one history item is removed from the query (leave-one-out, any model), so a
cited item is faithful to the score by construction, and `tests/test_explain.py` checks it.
"""

from __future__ import annotations

from fewrec.explain.reasons import Reason, explain_recommendations, history_contributions

__all__ = ["Reason", "explain_recommendations", "history_contributions"]
