"""Screening a proposal before anyone sees it (pure).

It looks for secrets, personal data, and users' words that would become an instruction.

Two checks. The shared screen (``stores._screen.screen_text``: secrets, personal data, prompt
markup, links, injection phrasing) reads every text of the proposal — the rule, its expected
effect and its risk note. And a rule must not repeat what a user wrote: a run of
:data:`QUOTE_WORDS` words taken from a message or comment of the turns reflection saw would
turn that user's words into everyone's instructions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ..db import normalize_text
from ..stores._screen import screen_text
from ._model import ScreenNote

__all__ = ["QUOTE_WORDS", "screen_proposal"]

#: Consecutive words a rule may share with a user's text before it counts as quoting it.
QUOTE_WORDS = 6

_WORD = re.compile(r"[^\W_]+")


def _grams(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(normalize_text(text))
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _quoted(text: str, user_texts: Iterable[str]) -> str | None:
    mine = _grams(text, QUOTE_WORDS)
    if not mine:
        return None
    for user_text in user_texts:
        common = mine & _grams(user_text, QUOTE_WORDS)
        if common:
            return " ".join(sorted(common)[0])
    return None


def screen_proposal(*, texts: Sequence[str], user_texts: Sequence[str]) -> list[ScreenNote]:
    """What the screen found in a proposal's ``texts`` (empty: nothing)."""
    notes: list[ScreenNote] = []
    for text in texts:
        if not text:
            continue
        notes.extend(
            ScreenNote(kind=f.kind, reason=f"{f.reason} ({f.excerpt})")
            for f in screen_text(text).findings
        )
        quote = _quoted(text, user_texts)
        if quote is not None:
            notes.append(
                ScreenNote(
                    kind="user_text",
                    reason=f"repeats a user's words (\"{quote}…\"): users' text never becomes "
                    "an instruction",
                )
            )
    return notes
