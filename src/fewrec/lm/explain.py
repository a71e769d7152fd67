"""A short generated reason ("you may like X because ...") from the packaged LM.

The sentence is fluent, not faithful: the faithful part of an explanation is the leave-one-out
history attribution of `fewrec.explain`. This text only phrases a suggestion for people.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from fewrec.errors import ArgumentError, ConfigError, DataError
from fewrec.lm.model import DEFAULT_LM, load_lm

MAX_LIKED = 5


def reason_messages(
    liked_titles: Sequence[str], target_title: str, noun: str = "movie"
) -> list[dict[str, str]]:
    """The chat messages that ask for a one-sentence reason."""
    if isinstance(liked_titles, str | bytes) or not isinstance(liked_titles, Iterable):
        # a lone title was read character by character: 'The user enjoyed "S" ...'
        raise ArgumentError(
            f"liked_titles must be a list of titles, got {liked_titles!r}",
            fix=f"pass a list, e.g. [{liked_titles!r}]" if isinstance(liked_titles, str) else None,
        )
    if not isinstance(noun, str) or not noun.strip():  # ("A user liked these s: ...")
        raise ArgumentError(f"noun must name the kind of item, got {noun!r}", fix="e.g. noun='movie'")
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
    messages = reason_messages(liked_titles, target_title, noun)
    return trim_reason(load_lm(lm).generate(messages, max_new_tokens), [target_title, *liked_titles])


#: Words a "." follows without ending the sentence ("Mr. Holland's Opus", "Sgt. Bilko"): titles
#: and ranks, none of them a word that ends a sentence ("no" is one: "They would say no.").
ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "st", "sgt", "jr", "sr", "lt", "col", "capt", "prof", "rev"}
)


def trim_reason(text: str, titles: Sequence[str] = ()) -> str:
    """Generated text with its spacing normalised, cut to whole sentences when the token budget
    cut the last one; a single cut-off sentence ends at its last whole clause (a comma or
    semicolon), else without its last, maybe partial word, and with "…" so it reads as cut.

    A mark inside one of ``titles`` (with or without its year; "L.A. Confidential", "Shall We
    Dance?") or a "." after a title such as "Mr." ends no sentence (the reason had been cut to
    'The user might enjoy "Mr.'), and a text that ends with a title ending in one is whole."""
    text = " ".join(text.split())
    inside = _title_spans(text, titles)
    closed = text.rstrip("\"')]”’»")
    end = len(closed) - 1  # (a title's own last mark closes the text: "... enjoy Shall We Dance?")
    if not text or (closed.endswith((".", "!", "?", "…")) and not any(a <= end < b - 1 for a, b in inside)):
        return text
    ends = [m.start() for m in re.finditer(r"[.!?] ", text) if not _mid_sentence(text, m.start(), inside)]
    if ends and ends[-1] > 0:
        return text[: ends[-1] + 1]
    clauses = [
        m.start() for m in re.finditer(r"[,;] ", text) if not any(a <= m.start() < b for a, b in inside)
    ]
    if clauses and clauses[-1] > 0:
        return text[: clauses[-1]] + "…"
    head, _, _ = text.rpartition(" ")
    return (head or text).rstrip(",;:-– ") + "…"


def _title_spans(text: str, titles: Sequence[str]) -> list[tuple[int, int]]:
    """Where ``titles`` (and each without a trailing "(1997)") occur in ``text``."""
    spans = []
    for title in titles:
        title = " ".join(str(title).split())
        for name in {title, re.sub(r"\s*\(\d{4}\)$", "", title)}:
            if name:
                spans += [(m.start(), m.end()) for m in re.finditer(re.escape(name), text)]
    return spans


def _mid_sentence(text: str, at: int, inside: list[tuple[int, int]]) -> bool:
    """Whether the mark at ``at`` is not a sentence's end: inside a title, or a "." after a
    title such as "Mr." (an initial is not told from a sentence's end: "the U.S. It is")."""
    if any(a <= at < b for a, b in inside):
        return True
    word = re.search(r"(\w+)$", text[:at])
    return text[at] == "." and word is not None and word.group(1).lower() in ABBREVIATIONS
