"""What a user's free text asks for, and what it asks to avoid.

A sentence embedding cannot say "not": "I like comedies but I hate romance" lands near romance,
and a model that matches it fills the list with romances (9 of 10 in a user audit, against 0 of
10 without the clause). So a text is split, by English rules, into the wishes and the
aversions: clauses are cut at punctuation and "but", and a clause with a negation ("no", "not
into", "don't like", "hate", "except", "without", ...) puts the words after it among the
aversions and the words before it among the wishes ("horror is not for me", "romcoms aren't
my thing" the other way round). Idioms ("nothing beats", "not sure") and a "No" inside a
clause before a capitalised word (a title: "I loved No Country for Old Men") are no negation,
nor are the catalogue's own titles that hold one (`Titles`: "Rebel Without a Cause"). Text
models embed both and match the wishes minus the aversions, so an aversion pushes its
look-alikes down. (A disliked item does not: "no horror" names a kind to avoid, while one film
rated low says little against its look-alikes; `benchmarks/dislikes.md`.)

English negations are recognised in full; Spanish ("odio", "no me gustan"), French ("je
déteste", "n'aime pas"), German ("hasse", "mag keine", "ohne") and Chinese ("讨厌", "不喜欢")
ones by their commonest forms, with their contrasts ("pero", "mais", "aber", "但是"). In other
languages the whole text counts as wishes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeGuard

#: "anything but X" is an exception, not a contrast: read it as "anything except X".
_EXCEPT = re.compile(r"\b(?:anything|everything|all|any)\s+but\b", re.IGNORECASE)
#: Clauses end at punctuation, a contrast, or an "and" that starts a new wish ("I hate horror
#: and love westerns").
_CLAUSES = re.compile(
    r"[.;:!?,\n\uff0c\u3002\uff1b\uff1a\uff01\uff1f\u3001]+|\bbut\b|\bhowever\b|\bthough\b|\balthough\b|\bwhereas\b|"
    # the same contrasts in Spanish, French, German and Chinese
    r"\bpero\b|\baunque\b|\bmais\b|\bcependant\b|\baber\b|\bjedoch\b|\bsondern\b|但是|可是|不过|但|"
    # "and" before a new wish ("... and I also love westerns"), not before "love triangles"
    r"\band\s+(?=(?:i(?:'d|'m)?\s+)?(?:also\s+|really\s+|\w+ly\s+)?(?:love|like|enjoy|want|prefer|adore)\b"
    r"(?!\s+(?:triangles?|scenes?|stor(?:y|ies)|interests?|songs?|affairs?)\b))",
    re.IGNORECASE,
)
_ADVERB = r"(?:(?:really|much|particularly|especially|at all|ever|too|very|so|that|a|big|huge|great) )*"
#: Negations in Spanish, French and German, words that are no English words ("sin", "sans",
#: "salvo" and "a part" are left out); tried before the English ones, so "no me gustan" is one
#: negation.
_FOREIGN = (
    r"no (?:me |nos )?(?:gustan?|encantan?|interesan?|quiero|soporto|aguanto)|odio|detesto|nada de|"
    r"excepto|"
    r"(?:je )?n'(?:aime|adore|supporte|veux|regarde) (?:pas|plus|gu[eè]re)|"
    r"(?:je )?ne (?:supporte|veux|regarde) pas|pas (?:de(?! deux)|d'|fan de|trop)|(?:je )?d[ée]teste|sauf|"
    r"à part|"  # (not "a part": "music plays a part")
    r"(?:ich )?mag (?:keine?[nmrs]?|nicht)|keine?[nmrs]?|(?:ich )?hasse|nicht|ohne|au(?:ß|ss)er"
)
#: Chinese negations: the language writes no spaces, so they are matched without word boundaries.
_CHINESE = r"不喜欢|不爱看|不爱|讨厌|不要|不想看|不想|别给我|除了|没兴趣|受不了"
_NEGATION = re.compile(
    r"\b(?:"
    + _FOREIGN
    + r"|no(?!-)|nothing|none|neither|non-(?!(?:fiction|stop|linear)\b)|without|except|excluding|"
    r"other than|rather than|instead of|less|fewer|"
    r"(?:is|are|was|were) ?n[o']?t|isnt|arent|"
    r"hate[sd]?|dislike[sd]?|loathe[sd]?|avoid|skip|spare me|stay away from|"
    r"(?:sick|tired) of|bored (?:of|by|with)|"
    r"(?:can'?t|cannot|could ?n'?t) (?:stand|bear|handle|take|do)|"
    rf"(?:do|does|did|wo|would) ?n[o']?t {_ADVERB}"
    r"(?:like|love|enjoy|want|care for|need|watch|do|recommend|show)|"
    rf"dont {_ADVERB}(?:like|love|enjoy|want|watch|do)|"
    rf"never {_ADVERB}(?:watch|watched|like|liked|enjoy|enjoyed|want)|"
    r"never (?:show|give|recommend|suggest|send)(?: me| us)?|zero|"
    r"ai ?n'?t (?:into|a fan of|keen on)|no thanks? to|"
    rf"not {_ADVERB}(?:fan of|into|interested in|keen on|fond of)|not"
    r")\b|" + _CHINESE,
    re.IGNORECASE,
)
#: A negation after what it is about: "horror is not for me", "romcoms aren't my thing".
_AFTER = re.compile(
    r"\b(?:(?:(?:is|are|'s|'re)\s*(?:n't|\s+not)|isnt|arent|not)\s+(?:really\s+|quite\s+)?"
    r"(?:for me|my (?:thing|cup of tea|style|jam|genre|taste))|"
    r"(?:(?:is|are|'s|'re)\s+(?:a\s+)?no-?go)|(?:is|are|'s|'re)\s+a\s+(?:no|pass)|"
    r"not (?:so|that|too) much|no,? thanks?(?!\s+to\b)|\s*[-\u2013:]\s*no(?:pe)?(?=\W*$)|"
    r"(?:do|does)\s*(?:n't|\s+not)\s+(?:appeal to|work for|do it for|do anything for)\s+me|"
    r"no (?:es|son) (?:lo m[ií]o|para m[ií])|(?:ce )?n'est pas (?:mon truc|pour moi)|"
    r"(?:ist|sind) nicht (?:mein ding|meins|mein fall|f[üu]r mich))\b|不是我的菜|不适合我",
    re.IGNORECASE,
)
#: A clause that only turns down the one before it: "Horror? No thanks.", "Horror, not so much".
_DISMISS = re.compile(
    r"(?:no(?:pe)?|nah)(?:,?\s*thanks?(?:\s+you)?)?|no way|not (?:so|that|too) much|not really|"
    r"(?:hard\s+)?pass|meh",
    re.IGNORECASE,
)
#: A fresh wish after an aversion in one unpunctuated clause: "I hate horror I love comedies",
#: "no horror just comedies", "I hate horror so give me comedies" (the aversion had run on to
#: the clause's end, so what was asked for was avoided).
_FRESH = re.compile(
    r"\b(?:(?:so|and)\s+)?(?:"
    r"(?:i(?:'d|'m)?|we)\s+(?:also\s+|really\s+|much\s+|\w+ly\s+)?"
    r"(?:love|like|enjoy|want|prefer|adore|would like)\b|"
    r"(?:give|show|recommend|find|suggest)\s+(?:me|us)\b|"
    r"(?:just|only|instead)\s+(?=\w)"
    r")",
    re.IGNORECASE,
)
#: Words after which "just" and "only" qualify what comes next, not start a wish ("films that
#: are just boring", "movies with only one location").
_QUALIFIED = frozenset(
    re.findall(r"\S+", "is are was were be been being that with of for in on by has have had it's its")
)
#: Negations that are not about taste: "not sure", "no idea", "nothing beats", "second to none"
#: (the negation they hold is skipped, others in the clause still count).
_NOT_TASTE = re.compile(
    r"\b(?:(?:not|no)\s+(?:sure|idea|matter|problem|more than|bad|mind|doubt|wonder)|"
    # a negated aversion is no aversion: "I don't hate comedies", "I'm not against a romance",
    # "not only comedies but also dramas" (each gave none of the genre asked for)
    r"(?:do|does|did|would|wo)\s*n['o]?t\s+(?:really\s+)?(?:hate|dislike|mind)|"
    r"not\s+(?:against|only)|would\s*n'?t\s+say\s+no(?:\s+to)?|"
    r"never\s+get\s+(?:tired|sick|bored)\s+of|can'?t\s+get\s+enough(?:\s+of)?|"
    r"(?:do|does|would)\s*n['o]?t\s+want\s+anything\s+(?:other|else|but)(?:\s+than)?|"
    r"nothing\s+(?:beats|compares|better than|like (?:a|an|the) good)|second to none|none better|"
    r"no better)\b",
    re.IGNORECASE,
)
#: A title, not a negation: "No" inside a clause before a capitalised word ("I loved No Country
#: for Old Men"; at a clause's start "No Disney stuff" is a negation) or after "Dr" ("Dr. No").
_TITLE_NO = re.compile(r"(?<=\w )No(?=\s+[A-Z])|(?i:(?<=dr )no)\b")
#: Abbreviations whose full stop does not end a clause.
_ABBREVIATION = re.compile(r"\b(Dr|Mr|Mrs|Ms|St|Jr|vs)\.", re.IGNORECASE)


@dataclass(frozen=True)
class Wishes:
    """A free text split into what it asks for (``wants``) and what it asks to avoid
    (``avoids``); either may be empty."""

    wants: str
    avoids: str


def has_words(text: str | None) -> TypeGuard[str]:
    """Whether a text holds a word: not only blanks, symbols or emoji (such a text is ignored)."""
    return text is not None and re.search(r"\w", text) is not None


def title_forms(title: object) -> list[str]:
    """How a user writes a catalogue title: without a parenthesis ("(1993)", an original title),
    and a title filed with its article at the end ("Man Without a Face, The") both with it in
    front and without it."""
    plain = re.sub(r"\s*\([^)]*\)", "", str(title).replace("\u2019", "'")).strip()
    moved = re.fullmatch(r"(.+), (The|A|An)", plain)
    return [f"{moved[2]} {moved[1]}", moved[1]] if moved else [plain]


class Titles:
    """The catalogue's titles that hold a negation ("Rebel Without a Cause", "Much Ado About
    Nothing", "10 Things I Hate About You"), found in a user's text so that `split_wishes`
    reads them as titles. MovieLens' "Man Without a Face, The" is also found as "The Man
    Without a Face" and "Man Without a Face"; a parenthesis ("(1993)", an original title) is
    left out. A title must be written with its capitals: in lower case it reads as words ("maybe
    not too silly" is no "Maybe, Maybe Not", "no strings attached" an aversion). Titles of one
    word ("Hate") are not kept: they would hide the negation of "I hate horror"."""

    def __init__(
        self, titles: Iterable[object], known: Iterable[str] = (), keep: Callable[[str], bool] | None = None
    ):
        """``keep``: which titles to find (default: those holding a negation)."""
        self._keep = keep
        chosen = keep or (lambda form: _NEGATION.search(form) is not None)
        forms = set(known)  # forms already found (`adding`)
        for title in titles:
            named = title_forms(title)
            # a sequel's title without its subtitle ("Children of the Corn: The Gathering")
            named += [form.split(": ")[0] for form in named if ": " in form]
            for form in named:
                if len(form.split()) >= 2 and chosen(form):
                    forms.add(form)
        self.forms = sorted(forms, key=lambda f: (-len(f), f))  # the longest first
        alternatives = "|".join(re.escape(f) for f in self.forms)
        self._pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)") if self.forms else None

    def adding(self, titles: Iterable[object]) -> Titles:
        """These titles and ``titles``."""
        return Titles(titles, self.forms, self._keep)

    def __len__(self) -> int:
        return len(self.forms)

    def hide(self, text: str) -> tuple[str, list[str]]:
        """``text`` with each title found replaced by a placeholder, and the titles replaced."""
        found: list[str] = []

        def placeholder(match: re.Match[str]) -> str:
            found.append(match.group())
            return f"\ue000{len(found) - 1}\ue001"

        if self._pattern is not None:
            text = self._pattern.sub(placeholder, text)
        return text, found


def _unhide(text: str, found: list[str]) -> str:
    return re.sub("\ue000(\\d+)\ue001", lambda m: found[int(m[1])], text)


def split_wishes(text: str, titles: Titles | None = None) -> Wishes:
    """Split ``text`` into wishes and aversions (see the module doc). A text without a negation
    is all wishes, unchanged. ``titles``: the catalogue's titles that hold a negation, read as
    titles where the text names them ("I loved Rebel Without a Cause")."""
    text = text or ""
    plain = _ABBREVIATION.sub(r"\1", text.replace("\u2019", "'").replace("\u2018", "'"))
    plain = plain.replace("\ue000", "").replace("\ue001", "")  # (the placeholders of `Titles.hide`)
    found: list[str] = []
    if titles:
        plain, found = titles.hide(plain)
    exceptions = _EXCEPT.sub(" except ", plain)
    clauses = [c.strip() for c in _CLAUSES.split(exceptions)]
    if not any(_negation(c) or _AFTER.search(c) or _DISMISS.fullmatch(c) for c in clauses):
        return Wishes(text, "")
    wants: list[str] = []
    avoids: list[str] = []
    while clauses:
        clause = clauses.pop(0).strip()
        if _DISMISS.fullmatch(clause):  # "Horror? No thanks.": the wish before is turned down
            while wants and not _join(wants[-1:]):
                wants.pop()
            if wants:
                avoids.append(wants.pop())
            continue
        after = _AFTER.search(clause)
        if after is not None:  # "horror is not for me": what comes before is avoided
            avoids.append(clause[: after.start()].strip())
            clauses.insert(0, clause[after.end() :])
            continue
        match = _negation(clause)
        if match is None:
            wants.append(clause)
            continue
        wants.append(clause[: match.start()].strip())
        rest = clause[match.end() :]
        fresh = _fresh_wish(rest)
        avoids.append(rest[:fresh].strip())
        if fresh < len(rest):  # "I hate horror I love comedies": the rest is a clause of its own
            clauses.insert(0, rest[fresh:])
    return Wishes(_unhide(_join(wants), found), _unhide(_join(avoids), found))


def _fresh_wish(rest: str) -> int:
    """Where a fresh wish starts in what follows a negation (`_FRESH`), or its length."""
    for match in _FRESH.finditer(rest):
        before = re.findall(r"[\w']+", rest[: match.start()])
        if not before:  # nothing avoided yet ("I don't like just any comedy")
            continue
        if match.group().split()[0].casefold() in ("just", "only", "instead") and (
            before[-1].casefold() in _QUALIFIED
        ):
            continue
        return match.start()
    return len(rest)


def _negation(clause: str) -> re.Match[str] | None:
    """The clause's first negation about taste, if any (not one of `_NOT_TASTE`, nor a title's
    "No")."""
    idioms = [m.span() for m in _NOT_TASTE.finditer(clause)]
    for match in _NEGATION.finditer(clause):
        inside = any(lo <= match.start() < hi for lo, hi in idioms)
        if not inside and not _TITLE_NO.match(clause, match.start()):
            return match
    return None


#: Words that say nothing on their own: a clause left with only these ("I" of "I hate X") is dropped.
_FILLER = frozenset(
    ["i", "i'm", "im", "i've", "i'd", "we", "you", "me", "and", "or", "so", "also", "just", "please"]
    + ["really", "honestly", "could", "would", "do", "rather", "am", "is", "are", "it", "to", "a"]
    + ["the", "well", "oh", "ok", "okay", "maybe", "very", "want"]
    + [
        "yo",
        "quiero",
        "je",
        "j'",
        "moi",
        "veux",
        "ich",
        "mir",
        "wir",
        "will",
        "möchte",
        "我",
        "我们",
        "也",
        "很",
    ]
)


def _join(parts: list[str]) -> str:
    return ", ".join(p for p in parts if {w.casefold() for w in re.findall(r"[\w']+", p)} - _FILLER)


def words_of(text: str) -> set[str]:
    """The lower-case words of ``text`` (letters only: "Sci-Fi" gives "sci" and "fi")."""
    return set(re.findall(r"[^\W\d_]+", text.casefold()))


#: Capitalised words that name no catalogue entry: days, months, holidays, nationalities and
#: languages, awards ("Korean films", "Christmas movies", "Oscar winners").
_COMMON_CAPITALISED = frozenset(
    re.findall(
        r"\w+",
        "monday tuesday wednesday thursday friday saturday sunday january february march april "
        "may june july august september october november december christmas xmas halloween easter "
        "thanksgiving valentine valentines oscar oscars american british english french german "
        "italian spanish japanese chinese korean indian russian mexican canadian australian irish "
        "scottish welsh swedish danish norwegian finnish dutch polish greek turkish brazilian "
        "argentinian european asian african hollywood bollywood god i",
    )
)
#: Words a sentence typed in Title Case capitalises, and a name or a title hardly holds.
_SMALL_WORDS = frozenset(["with", "and", "of", "for", "in", "on", "to", "or", "lots", "movies", "films"])
_TOKEN = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")


def unknown_names(text: str | None, vocabulary: set[str] | frozenset[str]) -> list[str]:
    """The runs of capitalised words in ``text`` ("Cary Grant", "Almodóvar"; not the first word
    of a sentence, nor days, months, nationalities...) with a word ``vocabulary`` (the words of
    the catalogue's item texts) lacks, in order, once each: names the items' text does not hold,
    which a text encoder can match only by what it knows of them. A sentence typed in Title Case
    ("I Love Action Movies") holds no names this way and is skipped."""
    out: dict[str, None] = {}
    for sentence in _SENTENCES.split(text or ""):
        tokens = list(_TOKEN.finditer(sentence))
        capital = [_capitalised(t.group()) for t in tokens]
        if any(
            cap and t.group().casefold() in _SMALL_WORDS
            for t, cap in zip(tokens[1:], capital[1:], strict=True)
        ):
            continue  # "I Love Action Movies With Lots Of Explosions": Title Case, no names
        run: list[str] = []
        for n, (token, cap) in enumerate(zip(tokens, capital, strict=True)):
            joined = n > 0 and not sentence[tokens[n - 1].end() : token.start()].strip()
            if run and not (cap and joined):
                _add_unknown(run, vocabulary, out)
                run = []
            if cap and n > 0:  # a sentence's first word is capitalised anyway
                run.append(re.sub(r"['\u2019]s$", "", token.group()))
        _add_unknown(run, vocabulary, out)
    return list(out)


def _capitalised(word: str) -> bool:
    return len(word) > 1 and word[0].isupper() and not word.isupper()


def _add_unknown(run: list[str], vocabulary: set[str] | frozenset[str], out: dict[str, None]) -> None:
    words = [w.casefold() for w in run]
    if words and any(w not in _COMMON_CAPITALISED and not _known(w, vocabulary) for w in words):
        out[" ".join(run)] = None


def _known(word: str, vocabulary: set[str] | frozenset[str]) -> bool:
    """``word`` or its singular ("Westerns", "Comedies") is in ``vocabulary``."""
    singular = (
        {word[:-3] + "y", word[:-2]} if word.endswith("ies") else {word[:-1]} if word.endswith("s") else set()
    )
    return word in vocabulary or bool(singular & vocabulary)
