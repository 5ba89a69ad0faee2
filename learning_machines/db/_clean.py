"""Values at the database edge: what both backends store the same way, and what they refuse.

Every operation passes through :func:`clean_ops` before a backend runs it (``Db.run`` and
``Db.batch``), so SQLite and PostgreSQL store exactly the same thing, and a value a model can
produce is either stored so that it reads back or refused before anything is written:

- **NUL** (U+0000) is removed from text and from JSON strings and keys. It carries no meaning in
  what people or models write, PostgreSQL can hold it in neither ``text`` nor ``jsonb``, and
  refusing it would fail a whole turn (episodic memory included) over an invisible character.
  Lone surrogates (half of a UTF-16 pair, which UTF-8 cannot encode) become U+FFFD.
- **Identifiers** (ids, user, session and agent ids, namespaces, types, keys) are never changed:
  one holding NUL or a lone surrogate, or longer than :data:`MAX_KEY_CHARS`, raises
  :class:`~learning_machines.exceptions.ValidationError` — removing a character from an id could
  make it someone else's.
- **Times** are converted to UTC; one that falls outside the years 1–9999 once in UTC (say
  ``9999-12-31T23:59:59-23:59``) is refused: PostgreSQL would store year 10000, which no Python
  program can read back.
- **Sizes**: a learning's ``search_text`` is at most :data:`MAX_SEARCH_TEXT_CHARS`; any other
  text, and any JSON value once serialised, at most :data:`MAX_TEXT_CHARS`.
- **JSON** must be serialisable and its numbers finite (PostgreSQL's ``jsonb`` has no NaN).
- **Evidence** (``helpful``/``harmful`` of a learning and of the ops that move them) must be
  finite: SQLite cannot store NaN in a number column, and one NaN would rank every search by it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..exceptions import ValidationError
from ._ops import Op, check_ops

__all__ = [
    "MAX_KEY_CHARS",
    "MAX_SEARCH_TEXT_CHARS",
    "MAX_TEXT_CHARS",
    "clean_json",
    "clean_ops",
    "clean_text",
    "clean_time",
]

#: Longest identifier (id, user id, namespace, type, dedupe key …) stored, in characters.
#: PostgreSQL refuses index entries over ~2.7 kB; ids at the API edge are at most 256.
MAX_KEY_CHARS = 512
#: Longest ``search_text`` of a learning, in characters (~50k tokens: far beyond what an embedder
#: reads). PostgreSQL's ``tsvector`` fails near 800k characters of distinct words.
MAX_SEARCH_TEXT_CHARS = 200_000
#: Longest value of any other text column, or of a JSON value once serialised, in characters.
#: Above what a worker saves of a turn (its messages and the raw extraction, before the stores
#: cut it to their limits); a value past it is no conversation.
MAX_TEXT_CHARS = 16_000_000

_SURROGATE = re.compile("[\ud800-\udfff]")

# Free-text fields (NUL stripped) with their size limit, and JSON fields, per record or op type
# name. Every other ``str`` field is an identifier.
_TEXT_FIELDS: dict[str, dict[str, int]] = {
    "Learning": {"search_text": MAX_SEARCH_TEXT_CHARS},
    "Change": {"reason": MAX_TEXT_CHARS},
    "HistoryEntry": {"reason": MAX_TEXT_CHARS},
    "PendingWork": {"last_error": MAX_TEXT_CHARS, "raw_output": MAX_TEXT_CHARS},
    "Message": {
        "user_message": MAX_TEXT_CHARS,
        "assistant_message": MAX_TEXT_CHARS,
        "messages_json": MAX_TEXT_CHARS,
    },
    "Proposal": {"summary": MAX_TEXT_CHARS, "decision_note": MAX_TEXT_CHARS},
    "SearchLearnings": {"query": MAX_TEXT_CHARS},
    "FailWork": {"error": MAX_TEXT_CHARS, "raw_output": MAX_TEXT_CHARS},
}
_JSON_FIELDS: dict[str, frozenset[str]] = {
    "Learning": frozenset({"content", "provenance"}),
    "Change": frozenset({"actor"}),
    "HistoryEntry": frozenset({"old", "new", "actor"}),
    "PendingWork": frozenset({"payload"}),
    "Proposal": frozenset({"payload"}),
    "UpdateWork": frozenset({"payload"}),
    "PatchContent": frozenset({"patch"}),
}
# Numbers that must be finite, per record or op type name.
_FINITE_FIELDS: dict[str, frozenset[str]] = {
    "Learning": frozenset({"helpful", "harmful"}),
    "AddEvidence": frozenset({"helpful", "harmful"}),
    "SetEvidence": frozenset({"helpful", "harmful", "expected_helpful", "expected_harmful"}),
}
# Vectors are checked by the backends (finite floats); walking them here would cost more than
# the write.
_VECTOR_FIELDS = frozenset({"embedding", "vector"})


def _fix_chars(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "")
    if _SURROGATE.search(text):
        # Valid pairs (rare in a str) are joined, lone halves become U+FFFD.
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def clean_text(text: str, *, what: str, limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` without NUL and lone surrogates; :class:`ValidationError` if over ``limit``."""
    if not isinstance(text, str):
        raise ValidationError(f"{what} must be text (str), not {type(text).__name__}")
    text = _fix_chars(text)
    if len(text) > limit:
        raise ValidationError(
            f"{what} is {len(text):,} characters long; the database keeps at most {limit:,} "
            "(learning_machines.db limits). Shorten or summarise it before storing it."
        )
    return text


def _check_key(value: str, what: str) -> str:
    if "\x00" in value or _SURROGATE.search(value):
        raise ValidationError(
            f"{what} {value[:80]!r} contains a NUL or a lone surrogate character; identifiers "
            "are stored exactly as given, so remove it before passing the id."
        )
    if len(value) > MAX_KEY_CHARS:
        raise ValidationError(
            f"{what} is {len(value):,} characters long; identifiers are at most "
            f"{MAX_KEY_CHARS}. Use a short stable id (a UUID, a database key), not free text."
        )
    return value


def clean_time(value: datetime, *, what: str) -> datetime:
    """``value`` in UTC (naive means UTC); :class:`ValidationError` outside years 1–9999 in UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValidationError(
            f"{what} {value.isoformat()} falls outside the years 1-9999 once converted to UTC, "
            "so it could not be read back. Store a date within that range (or none)."
        ) from exc


def _clean_json_value(value: Any, what: str) -> Any:
    if isinstance(value, str):
        return _fix_chars(value)
    if isinstance(value, dict):
        return {
            (_fix_chars(k) if isinstance(k, str) else k): _clean_json_value(v, what)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_clean_json_value(v, what) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(
            f"{what} holds the number {value!r}; JSON (and PostgreSQL's jsonb) has no NaN or "
            "infinity. Store null or a string instead."
        )
    return value


def clean_json(value: Any, *, what: str) -> Any:
    """``value`` with NUL and lone surrogates removed from every string and key, size-checked."""
    cleaned = _clean_json_value(value, what)
    try:
        size = len(json.dumps(cleaned, ensure_ascii=False, separators=(",", ":")))
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{what} must be JSON-serialisable (str, numbers, bool, None, lists, dicts): {exc}"
        ) from exc
    if size > MAX_TEXT_CHARS:
        raise ValidationError(
            f"{what} is {size:,} characters of JSON; the database keeps at most "
            f"{MAX_TEXT_CHARS:,} per value (learning_machines.db limits). Store less."
        )
    return cleaned


def _clean_field(owner: str, name: str, value: Any) -> Any:
    what = f"{owner}.{name}"
    if value is None or name in _VECTOR_FIELDS:
        return value
    if name in _JSON_FIELDS.get(owner, ()):
        if not isinstance(value, dict):
            # Every JSON column holds an object; anything else could not be read back as one.
            raise ValidationError(f"{what} must be a JSON object (a dict), not {type(value)}")
        return clean_json(value, what=what)
    if name in _FINITE_FIELDS.get(owner, ()):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f"{what} must be a number, not {type(value).__name__}")
        if not math.isfinite(value):
            raise ValidationError(f"{what} is {value!r}; it must be a finite number")
        return value
    limit = _TEXT_FIELDS.get(owner, {}).get(name)
    if limit is not None:
        return clean_text(value, what=what, limit=limit)
    return _clean_any(value, what)


def _clean_any(value: Any, what: str) -> Any:
    if isinstance(value, str):
        return _check_key(value, what)
    if isinstance(value, datetime):
        return clean_time(value, what=what)
    if isinstance(value, tuple):
        if value and isinstance(value[0], float):
            return value  # a vector
        items = tuple(_clean_any(v, what) for v in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _clean_record(value)
    return value


def _clean_record(record: Any) -> Any:
    owner = type(record).__name__
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        if not f.init:
            continue
        value = getattr(record, f.name)
        cleaned = _clean_field(owner, f.name, value)
        if cleaned is not value:
            changes[f.name] = cleaned
    return dataclasses.replace(record, **changes) if changes else record


def clean_ops(ops: Sequence[Op[Any]]) -> list[Op[Any]]:
    """Check that ``ops`` are operations and return them with every value made storable.

    See the module docstring for what is changed and what is refused.
    """
    check_ops(ops)
    return [_clean_record(op) for op in ops]
