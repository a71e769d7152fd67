"""TALLRec-style prompts: "the user liked A, B and disliked C; will they like T? Yes/No".

The wording follows TALLRec (Bao et al., RecSys 2023): an instruction, the user's preferred and
non-preferred items, and the target; the answer is the first token of the reply ("Yes" or
"No"). Item text is used as given, so titles in any script (Chinese included) work as long as the
language model's tokenizer covers them. Up to three demonstration users, each with its answer,
can precede the question (in-context learning).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fewrec.errors import ConfigError, DataError

MAX_DEMOS = 3

INSTRUCTION = (
    "Given the user's preference and unpreference, identify whether the user will like the "
    'target {noun} by answering "Yes" or "No".'
)
SYSTEM = "You are a recommender system. Reply with Yes or No."


@dataclass(frozen=True)
class Episode:
    """One "will this user like the target?" question.

    Attributes:
        liked: texts of the history items the user liked.
        disliked: texts of the history items the user did not like.
        target: text of the item asked about.
        label: 1 liked, 0 not liked, None unknown (required for demonstrations).
    """

    liked: tuple[str, ...]
    disliked: tuple[str, ...]
    target: str
    label: int | None = None


def _quoted(texts: Sequence[str]) -> str:
    return ", ".join(f'"{t}"' for t in texts) if texts else "(none)"


def _clean(text: str, what: str) -> str:
    if not isinstance(text, str):
        raise DataError(f"{what} must be a string, got {type(text).__name__}", fix="pass item text")
    text = " ".join(text.split())
    if not text:
        raise DataError(f"{what} is empty", fix="give every item a non-empty title or text")
    return text


def describe(episode: Episode, noun: str = "movie") -> str:
    """The user block and question of one episode (no instruction, no answer)."""
    liked = [_clean(t, "a liked item's text") for t in episode.liked]
    disliked = [_clean(t, "a disliked item's text") for t in episode.disliked]
    target = _clean(episode.target, "the target item's text")
    return (
        f"User Preference: {_quoted(liked)}\n"
        f"User Unpreference: {_quoted(disliked)}\n"
        f'Whether the user will like the target {noun} "{target}"?'
    )


def answer_word(label: int) -> str:
    """The answer a label stands for ("Yes" for 1, "No" for 0)."""
    if label not in (0, 1):
        raise DataError(f"a label must be 0 or 1, got {label!r}")
    return "Yes" if label == 1 else "No"


def build_messages(
    episode: Episode, demos: Sequence[Episode] = (), noun: str = "movie"
) -> list[dict[str, str]]:
    """Chat messages (system + user) asking the episode's question after optional demos.

    Args:
        episode: the question.
        demos: 0 to 3 answered episodes of other users, shown before the question.
        noun: what the items are ("movie", "book", "商品"...).

    Returns:
        Messages for the language model's chat template; the reply starts with the answer.
    """
    if len(demos) > MAX_DEMOS:
        raise ConfigError(f"at most {MAX_DEMOS} demonstration users, got {len(demos)}")
    if not noun.strip():
        raise ConfigError("noun must not be empty (e.g. 'movie')")
    parts = [INSTRUCTION.format(noun=noun)]
    for i, demo in enumerate(demos, 1):
        if demo.label is None:
            raise DataError("a demonstration needs a label", fix="give demos label 0 or 1")
        parts.append(f"Example {i}:\n{describe(demo, noun)}\nAnswer: {answer_word(demo.label)}")
    if demos:
        parts.append("Now answer for this user:")
    parts.append(describe(episode, noun))
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]
