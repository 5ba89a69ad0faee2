"""Identities — user, session, agent, team and reviewer ids — checked once, at the API edge.

An id is a short printable string. Control characters are refused because ids are joined into
stable row ids with a separator (U+001F): a user id carrying it could address another user's
row. Identities are compared with :func:`identity_key` (Unicode NFKC, case-folded), so
``"Alice"`` and ``"alice"`` are the same person wherever a rule says "someone else".
"""

from __future__ import annotations

import unicodedata

from .exceptions import ValidationError

__all__ = ["MAX_ID_LENGTH", "check_id", "check_optional_id", "identity_key", "same_identity"]

#: The longest id accepted, in characters.
MAX_ID_LENGTH = 256


def check_id(value: object, *, name: str) -> str:
    """Return ``value`` if it is a usable id; raise :class:`ValidationError` saying why not.

    ``name`` is the parameter's name (``"user_id"``), used in the message.
    """
    if not isinstance(value, str):
        hint = f"; pass {name}=str({value!r})" if isinstance(value, int | float) else ""
        raise ValidationError(
            f"{name} must be a string, not {type(value).__name__} ({value!r}){hint}"
        )
    if not value.strip():
        raise ValidationError(f"{name} must not be empty or blank")
    if len(value) > MAX_ID_LENGTH:
        raise ValidationError(
            f"{name} is {len(value)} characters long; ids are at most {MAX_ID_LENGTH}: use a "
            "short stable id (a database key, a UUID), not free text"
        )
    for position, char in enumerate(value):
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Cn") or char in "\u2028\u2029":
            raise ValidationError(
                f"{name} contains the control or unassigned character U+{ord(char):04X} at "
                f"position {position}; ids must be printable text"
            )
    if value != value.strip():
        raise ValidationError(f"{name} {value!r} has leading or trailing spaces; strip them")
    return value


def check_optional_id(value: object, *, name: str) -> str | None:
    """:func:`check_id`, letting ``None`` through (an id the caller may leave out)."""
    return None if value is None else check_id(value, name=name)


def identity_key(value: str) -> str:
    """The form two ids are compared in: NFKC-normalised and case-folded."""
    return unicodedata.normalize("NFKC", value).casefold()


def same_identity(a: str | None, b: str | None) -> bool:
    """Whether ``a`` and ``b`` name the same person (``None`` is nobody, never equal)."""
    return a is not None and b is not None and identity_key(a) == identity_key(b)
