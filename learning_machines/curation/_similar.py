"""When two learnings are the same thing: cosine similarity plus lexical guards (pure).

Sentence embeddings put "lives in London" and "lives in Berlin" closer together than many true
paraphrases (see ``benchmarks/calibrate_dedup.py``), so similarity alone cannot decide a merge.
Two cheap guards catch what it misses: a *value conflict* (each text has a number, date word or
proper noun the other lacks) and a *substitution* (the same sentence with one slot swapped,
"dark mode" / "light mode"). A guarded pair is never merged on similarity alone; it is left to
the model confirmation hook, when there is one.
"""

from __future__ import annotations

import calendar
import difflib
import re
from collections.abc import Sequence

from ..db import normalize_text

__all__ = ["cosine", "distinguishing", "is_substitution", "richness", "value_conflict"]

_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
}  # fmt: skip
_CALENDAR = {n.lower() for n in (*calendar.day_name, *calendar.month_name) if n}
_TOKEN = re.compile(r"[A-Za-z][\w'-]*|\d+(?:[.,]\d+)?(?:st|nd|rd|th)?")
_WORD = re.compile(r"\w+")
# Words that carry no fact: dropping them makes "User lives in X" equal "The user lives in X".
_FILLER = frozenset(
    {"the", "a", "an", "user", "users", "is", "are", "was", "were", "their", "they", "them"}
    | {"to", "of", "s", "it", "its", "this", "that", "i"}
)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0 when either is all zeros)."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = sum(x * x for x in a) ** 0.5
    nb = sum(y * y for y in b) ** 0.5
    return dot / (na * nb) if na and nb else 0.0


def _values(text: str) -> set[str]:
    """Numbers, identifiers, calendar words and proper nouns of ``text`` ("two" → "2")."""
    out: set[str] = set()
    for i, token in enumerate(_TOKEN.findall(text)):
        low = token.lower().removesuffix("'s")
        if low[0].isdigit():
            out.add(re.sub(r"(st|nd|rd|th)$", "", low))
        elif low in _NUMBER_WORDS:
            out.add(_NUMBER_WORDS[low])
        elif low in _CALENDAR or (low.endswith("s") and low[:-1] in _CALENDAR):
            out.add(low.removesuffix("s") if low not in _CALENDAR else low)
        elif token[0].isupper() and (i > 0 or token.isupper()) and low not in _FILLER:
            out.add(low)
        elif any(c.isdigit() for c in low):
            out.add(low)  # an identifier: "k8s", "order-1234", "v2"
    return out


def _words(text: str) -> set[str]:
    words = {w.lower() for w in _WORD.findall(text)}
    return words | {_NUMBER_WORDS[w] for w in words if w in _NUMBER_WORDS}


def value_conflict(a: str, b: str) -> bool:
    """Each text names a value (number, day, month, proper noun) the other does not mention.

    ``"lives in London"`` / ``"lives in Berlin"`` conflict; ``"Carol is Alice's manager"`` /
    ``"Alice reports to Carol"`` do not (every name appears in both).
    """
    wa, wb = _words(a), _words(b)
    return bool(_values(a) - wb) and bool(_values(b) - wa)


def _content_tokens(text: str) -> list[str]:
    return [w for w in _WORD.findall(normalize_text(text).replace("'s", "")) if w not in _FILLER]


def is_substitution(a: str, b: str) -> bool:
    """Tell whether ``b`` is ``a`` with a slot swapped (only replacements, half unchanged).

    ``"prefers dark mode"`` / ``"prefers light mode"`` is a substitution; a reordering or an
    added word is not.
    """
    ta, tb = _content_tokens(a), _content_tokens(b)
    if ta == tb:
        return False
    ops = difflib.SequenceMatcher(a=ta, b=tb, autojunk=False).get_opcodes()
    if {op for op, *_ in ops} != {"equal", "replace"}:
        return False
    same = sum(i2 - i1 for op, i1, i2, _, _ in ops if op == "equal")
    return same * 2 >= len(ta) and same * 2 >= len(tb)


def distinguishing(a: str, b: str) -> bool:
    """Tell whether the texts differ in a way similarity cannot be trusted with."""
    return value_conflict(a, b) or is_substitution(a, b)


def richness(text: str) -> tuple[int, int]:
    """How informative a text is: (distinct content words, length). The richer text is kept."""
    return len(set(_content_tokens(text))), len(normalize_text(text))
