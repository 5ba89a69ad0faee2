"""Where a LangGraph item lives in our db, and which of our scopes a search can touch.

Pure logic, no I/O and no LangGraph import (the store in ``langgraph_store.py`` runs it).

The mapping, for an item ``(namespace, key) -> value``:

- A namespace that starts with a *user namespace* — by default ``("user", USER_ID, ...)``;
  configurable, e.g. ``("memories", "{user_id}")`` — is private to that user: its rows sit in
  our private namespace ``"user"`` with ``user_id=USER_ID``, so every read of them goes
  through the one SQL rule that lets the private namespace match only the reader's own rows;
  ``forget`` deletes them and ``export`` includes them, like the user's other learnings.
- Any other namespace is shared: its rows sit in our namespace ``"langgraph:" + ".".join(ns)``
  (LangGraph forbids ``.`` in a label, so the name is unique to the tuple).
- Every row has learning type ``"langgraph"``: our own stores never recall it, and curation
  leaves it alone (its policy neither decays, archives nor merges), so the store stays a
  key-value store. The row's id is a hash of (namespace, key), so a put replaces in place
  and every change is kept in the learning's history.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._ids import check_id, check_optional_id
from ..db import PRIVATE_NAMESPACE, LearningFilter
from ..exceptions import ConfigurationError, IsolationError

__all__ = [
    "LEARNING_TYPE",
    "USER_LABEL",
    "Namespace",
    "NamespaceMap",
    "Place",
    "Reach",
    "item_id",
    "namespace_matches",
    "private_filter",
    "shared_filter",
    "shared_name",
    "shared_namespace",
    "value_matches",
]

#: The learning type of every LangGraph item.
LEARNING_TYPE = "langgraph"
#: The label of a user namespace template that stands for the user's id.
USER_LABEL = "{user_id}"
_SHARED_PREFIX = "langgraph:"

Namespace = tuple[str, ...]


def shared_name(namespace: Namespace) -> str:
    """Our namespace name for a shared LangGraph namespace."""
    return _SHARED_PREFIX + ".".join(namespace)


def shared_namespace(name: str) -> Namespace | None:
    """The LangGraph namespace of one of our shared namespace names (``None``: not one)."""
    if not name.startswith(_SHARED_PREFIX):
        return None
    return tuple(name[len(_SHARED_PREFIX) :].split("."))


def item_id(namespace: Namespace, key: str) -> str:
    """The row id of an item: the same (namespace, key) always gives the same row."""
    text = json.dumps([LEARNING_TYPE, list(namespace), key], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, kw_only=True)
class Place:
    """Where the rows of one LangGraph namespace sit: our namespace and, if private, the owner."""

    namespace: str
    """Our namespace (``"user"`` when private)."""
    user_id: str | None
    """The owner of a private namespace; ``None`` for a shared one."""

    def filter(self) -> LearningFilter:
        """A filter reading exactly this place's LangGraph rows."""
        if self.namespace == PRIVATE_NAMESPACE:
            return private_filter(self.user_id)
        return shared_filter([self.namespace])


def private_filter(user_id: str | None) -> LearningFilter:
    """A user's private LangGraph rows (the reader is the owner)."""
    return LearningFilter(
        namespaces=(PRIVATE_NAMESPACE,), reader_user_id=user_id, learning_types=(LEARNING_TYPE,)
    )


def shared_filter(names: Iterable[str]) -> LearningFilter:
    """The LangGraph rows of these shared namespaces."""
    return LearningFilter(namespaces=tuple(names), learning_types=(LEARNING_TYPE,))


@dataclass(frozen=True, kw_only=True)
class Reach:
    """The private scopes a search under one prefix can touch (shared ones are found by name)."""

    users: frozenset[str]
    """Users the prefix names (``("user", "alice")`` names alice)."""
    every_user: bool
    """Whether the prefix stops above the user (``("user",)`` or ``()``): every user's rows."""

    def includes(self, user_id: str) -> bool:
        """Whether ``user_id``'s private rows are in reach."""
        return self.every_user or user_id in self.users


class NamespaceMap:
    """The mapping of LangGraph namespaces onto our scopes, for one store.

    ``user_namespaces`` are templates whose last label is ``"{user_id}"``. ``user_id`` binds
    the store to one user: any namespace naming another user raises ``IsolationError``, and
    searches and listings see only that user's private rows (and shared ones).
    """

    def __init__(self, *, user_namespaces: Sequence[Sequence[str]], user_id: str | None) -> None:
        fixed: list[Namespace] = []
        for template in user_namespaces:
            labels = tuple(template)
            if not labels or labels[-1] != USER_LABEL or USER_LABEL in labels[:-1]:
                raise ConfigurationError(
                    f"user namespace {labels!r} must end with the label {USER_LABEL!r} and name "
                    "it once, e.g. ('memories', '{user_id}')"
                )
            fixed.append(labels[:-1])
        for i, a in enumerate(fixed):
            for j, b in enumerate(fixed):
                if i != j and len(a) <= len(b) and b[: len(a)] == a:
                    raise ConfigurationError(
                        f"user namespaces {(*a, USER_LABEL)!r} and {(*b, USER_LABEL)!r} overlap: "
                        "one namespace would belong to two users; keep one of them"
                    )
        self.templates: tuple[Namespace, ...] = tuple(fixed)
        self.user_id = check_optional_id(user_id, name="user_id")

    def _allow(self, user_id: str) -> str:
        if self.user_id is not None and user_id != self.user_id:
            raise IsolationError(
                f"this store is bound to user {self.user_id!r} and cannot reach the namespace "
                f"of user {user_id!r}; use store.for_user({user_id!r}) for that user"
            )
        return user_id

    def owner(self, namespace: Namespace) -> str | None:
        """The user a namespace is private to (``None``: shared). Checks the id."""
        for fixed in self.templates:
            k = len(fixed)
            if len(namespace) > k and namespace[:k] == fixed:
                return self._allow(check_id(namespace[k], name="user_id"))
        return None

    def place(self, namespace: Namespace) -> Place:
        """Where the items of ``namespace`` sit."""
        owner = self.owner(namespace)
        if owner is not None:
            return Place(namespace=PRIVATE_NAMESPACE, user_id=owner)
        return Place(namespace=shared_name(namespace), user_id=None)

    def reach(self, prefix: Namespace) -> Reach:
        """The private scopes a search under ``prefix`` can touch."""
        users: set[str] = set()
        every = False
        for fixed in self.templates:
            k = len(fixed)
            if len(prefix) > k and prefix[:k] == fixed:
                users.add(self._allow(check_id(prefix[k], name="user_id")))
            elif fixed[: len(prefix)] == prefix:
                every = True
        return Reach(users=frozenset(users), every_user=every)

    def private_may_match(self, conditions: Sequence[tuple[str, Namespace]]) -> bool:
        """Whether any private namespace can meet these ``(match_type, path)`` conditions.

        Only saves reading private rows for listings that cannot include them; the listing
        checks every namespace against the conditions anyway.
        """
        return any(
            all(
                kind != "prefix" or all(p in ("*", f) for p, f in zip(path, fixed, strict=False))
                for kind, path in conditions
            )
            for fixed in self.templates
        )


def namespace_matches(kind: str, path: Namespace, namespace: Namespace) -> bool:
    """Whether ``namespace`` starts (``"prefix"``) or ends (``"suffix"``) with ``path``.

    ``"*"`` in ``path`` matches any one label.
    """
    if len(namespace) < len(path):
        return False
    if kind == "prefix":
        pairs = zip(path, namespace, strict=False)
    elif kind == "suffix":
        pairs = zip(reversed(path), reversed(namespace), strict=False)
    else:
        raise ValueError(f"unknown match type {kind!r}; use 'prefix' or 'suffix'")
    return all(p in ("*", label) for p, label in pairs)


_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _operator(value: Any, op: str, expected: Any) -> bool:
    if op == "$eq":
        return bool(value == expected)
    if op == "$ne":
        return bool(value != expected)
    left, right = _number(value), _number(expected)
    if left is None or right is None:
        return False  # a missing or non-numeric value is not greater or smaller than anything
    if op == "$gt":
        return left > right
    if op == "$gte":
        return left >= right
    if op == "$lt":
        return left < right
    return left <= right


def _matches(value: Any, expected: Any) -> bool:
    if isinstance(expected, Mapping):
        if any(str(k).startswith("$") for k in expected):
            unknown = [k for k in expected if k not in _OPERATORS]
            if unknown:
                raise ValueError(
                    f"unknown filter operator {unknown[0]!r}; use {', '.join(_OPERATORS)}"
                )
            return all(_operator(value, op, arg) for op, arg in expected.items())
        return isinstance(value, Mapping) and all(
            _matches(value.get(k), v) for k, v in expected.items()
        )
    if isinstance(expected, list | tuple):
        return (
            isinstance(value, list | tuple)
            and len(value) == len(expected)
            and all(_matches(v, e) for v, e in zip(value, expected, strict=True))
        )
    return bool(value == expected)


def value_matches(value: Mapping[str, Any], flt: Mapping[str, Any] | None) -> bool:
    """Whether an item's value meets a LangGraph search filter.

    Keys are top-level fields; a nested mapping matches nested fields; lists match element by
    element; ``{"$gt": 3}``-style operators compare (``$eq $ne $gt $gte $lt $lte``).
    """
    return not flt or all(_matches(value.get(k), v) for k, v in flt.items())
