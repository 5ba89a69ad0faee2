"""A smaller JSON schema for the combined extraction output (pure).

The schema is sent with every extraction call, so its size is paid on every turn. Pydantic's
schema for the combined model repeats what a model does not need: a ``title`` beside every
property, ``default`` values, ``$ref`` indirection into ``$defs``, and ``anyOf [X, null]`` for
every optional field. :func:`compact_schema` removes them; the output is still validated
against the full pydantic model, so what is accepted does not change (an optional field may
still be sent as null, or left out, which the instructions ask for).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["compact_schema"]

_NULL = {"type": "null"}
_DROP = frozenset({"title", "default"})


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any], seen: tuple[str, ...]) -> Any:
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return None
    name = ref.removeprefix("#/$defs/")
    if name in seen or name not in defs:
        raise ValueError(f"cannot inline recursive or unknown $ref {ref!r}")
    merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
    return _compact(merged, defs, (*seen, name))


def _compact(
    node: Any, defs: Mapping[str, Any], seen: tuple[str, ...] = (), *, optional: bool = False
) -> Any:
    if isinstance(node, list):
        return [_compact(item, defs, seen) for item in node]
    if not isinstance(node, dict):
        return node
    options = node.get("anyOf")
    if optional and isinstance(options, list) and len(options) == 2 and _NULL in options:
        # An optional field left out means the same as null: one type is enough.
        (kept,) = [o for o in options if o != _NULL]
        node = {**kept, **{k: v for k, v in node.items() if k != "anyOf"}}
    inlined = _resolve(node, defs, seen)
    if inlined is not None:
        return inlined
    out: dict[str, Any] = {}
    required = set(node.get("required", ()))
    for key, value in node.items():
        if key in _DROP or key == "$defs":
            continue
        if key == "properties" and isinstance(value, dict):
            # Property names are data here, not keywords: never drop one called "title".
            out[key] = {
                name: _compact(sub, defs, seen, optional=name not in required)
                for name, sub in value.items()
            }
        else:
            out[key] = _compact(value, defs, seen)
    return out


def compact_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` without titles, defaults, ``$defs`` (inlined) and null alternatives.

    Only for schemas whose optional fields may be left out; recursive ``$ref`` s are refused.
    """
    result: dict[str, Any] = _compact(dict(schema), schema.get("$defs", {}))
    return result
