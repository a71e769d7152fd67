"""A short generated reason ("you may like X because ...") from the packaged LM.

The sentence is fluent, not faithful: the faithful part of an explanation is the leave-one-out
history attribution of `fewrec.explain`. This text only phrases a suggestion for people.
"""

from __future__ import annotations

from collections.abc import Sequence

from fewrec.errors import ConfigError, DataError
from fewrec.lm.model import DEFAULT_LM, load_lm

MAX_LIKED = 5


def reason_messages(
    liked_titles: Sequence[str], target_title: str, noun: str = "movie"
) -> list[dict[str, str]]:
    """The chat messages that ask for a one-sentence reason."""
    if not isinstance(target_title, str) or not target_title.strip():
        raise DataError("the target title is empty", fix="pass the recommended item's title")
    liked = [" ".join(t.split()) for t in liked_titles if isinstance(t, str) and t.strip()]
    if not liked:
        raise DataError("no liked titles to explain from", fix="pass at least one title the user liked")
    shown = ", ".join(f'"{t}"' for t in liked[:MAX_LIKED])
    return [
        {"role": "system", "content": "You write one short, friendly sentence."},
        {
            "role": "user",
            "content": (
                f"A user liked these {noun}s: {shown}. In one sentence, say why they might enjoy "
                f'the {noun} "{" ".join(target_title.split())}".'
            ),
        },
    ]


def generate_reason(
    liked_titles: Sequence[str],
    target_title: str,
    *,
    lm: str = DEFAULT_LM,
    noun: str = "movie",
    max_new_tokens: int = 30,
) -> str:
    """One short sentence (greedy decoding, at most ``max_new_tokens``) on why the user may like
    ``target_title`` given titles they liked."""
    if not 1 <= max_new_tokens <= 128:
        raise ConfigError(f"max_new_tokens must be in 1..128, got {max_new_tokens}")
    text = load_lm(lm).generate(reason_messages(liked_titles, target_title, noun), max_new_tokens)
    text = " ".join(text.split())
    # keep whole sentences when the budget cut the last one
    end = max(text.rfind(". "), text.rfind("! "))
    if not text.endswith((".", "!", "?")) and end > 0:
        text = text[: end + 1]
    return text
