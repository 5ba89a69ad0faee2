"""The checks of a compare-and-set ``PatchContent``, shared by both backends (pure)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..exceptions import ConflictError, ValidationError
from ._ops import PatchContent
from ._records import Learning

__all__ = ["check_create", "check_expected"]


def check_expected(op: PatchContent, content: Mapping[str, Any]) -> None:
    """Raise :class:`ConflictError` unless ``content`` holds what ``op.expected`` says."""
    if not op.expected:
        return
    differs = sorted(k for k, v in op.expected.items() if content.get(k) != v)
    if differs:
        raise ConflictError(
            f"learning {op.id} changed since it was read ({', '.join(differs)}); read it again "
            "and retry"
        )


def check_create(op: PatchContent) -> Learning:
    """The row ``op.create`` inserts: checked, with the patch applied."""
    assert op.create is not None
    if op.create.id != op.id:
        raise ValidationError(
            f"PatchContent(create=...) must create the row it patches: its id is "
            f"{op.create.id!r}, not {op.id!r}"
        )
    check_expected(op, op.create.content)
    return dataclasses.replace(op.create, content={**op.create.content, **op.patch})
