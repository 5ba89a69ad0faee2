"""API keys: who a bearer token is, and what that key may do.

A key is either tied to one **user** (it acts only as that user: their memory, their turns,
their proposals) or belongs to a **reviewer** (reads any user's memory, decides proposals,
restores learnings) or an **admin** (a reviewer who may also forget, export and import any user
and read the work queue). Keys live in a TOML file that holds only their SHA-256 hashes::

    [[keys]]
    name = "alice"      # the user the key acts as, or the reviewer's name (recorded on decisions)
    role = "user"       # user | reviewer | admin
    sha256 = "9f86d0…"  # sha256 of the key; the key itself is shown once, when it is made

``learning-machines keys add --file keys.toml --name alice`` makes a key and prints it once.
The file is read again when it changes, so removing a line revokes a key without a restart.
Keys are never logged; a principal is logged by its name and role only.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .._ids import check_id
from ..exceptions import ConfigurationError, ValidationError

__all__ = [
    "KEYS_ENV",
    "ApiKey",
    "KeyRing",
    "Principal",
    "Role",
    "hash_key",
    "new_key",
    "read_keys",
    "write_keys",
]

#: Environment variable naming the keys file (the default of ``--keys``).
KEYS_ENV = "LEARNING_MACHINES_KEYS"
_PREFIX = "lm_"


class Role(StrEnum):
    """What a key may do."""

    USER = "user"
    """Acts as one user, only on that user's data."""
    REVIEWER = "reviewer"
    """Reads any user's memory, decides proposals, restores learnings."""
    ADMIN = "admin"
    """A reviewer who may also forget, export and import any user and read the work queue."""


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who is asking: a user, or a reviewer or admin by name."""

    name: str
    """The user id (role ``user``) or the reviewer's name (recorded as who decided)."""
    role: Role
    """What the key may do."""

    @property
    def user_id(self) -> str | None:
        """The user this principal acts as, or ``None`` for reviewers and admins."""
        return self.name if self.role is Role.USER else None

    @property
    def reviews(self) -> bool:
        """Whether this principal may read any user's memory and decide proposals."""
        return self.role in (Role.REVIEWER, Role.ADMIN)

    @property
    def administers(self) -> bool:
        """Whether this principal may forget, export and import any user."""
        return self.role is Role.ADMIN

    def __str__(self) -> str:
        return f"{self.role.value}:{self.name}"


@dataclass(frozen=True, kw_only=True)
class ApiKey:
    """One configured key: the hash of the secret, and the principal it authenticates."""

    name: str
    """The user id or reviewer name."""
    role: Role
    """What the key may do."""
    sha256: str
    """Hex SHA-256 of the key."""

    @property
    def principal(self) -> Principal:
        """The principal this key authenticates."""
        return Principal(name=self.name, role=self.role)


def hash_key(key: str) -> str:
    """Hex SHA-256 of a key, as stored in the keys file."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A new random key (256 bits, URL-safe, prefixed ``lm_`` so it is recognisable in leaks)."""
    return _PREFIX + secrets.token_urlsafe(32)


def _parse(entries: object, *, source: str) -> list[ApiKey]:
    if not isinstance(entries, list):
        raise ConfigurationError(f"{source}: expected [[keys]] tables; see docs/server.md")
    keys: list[ApiKey] = []
    hashes: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{source}: key #{number} is not a table")
        try:
            name = check_id(entry.get("name"), name=f"key #{number} name")
        except ValidationError as exc:
            raise ConfigurationError(f"{source}: {exc}") from exc
        try:
            role = Role(entry.get("role", "user"))
        except ValueError as exc:
            raise ConfigurationError(
                f"{source}: key #{number} ({name}) has role {entry.get('role')!r}; use "
                "user, reviewer or admin"
            ) from exc
        digest = str(entry.get("sha256", "")).lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigurationError(
                f"{source}: key #{number} ({name}) needs sha256 = 64 hex digits (the hash of the "
                "key, never the key itself); make keys with `learning-machines keys add`"
            )
        if digest in hashes:
            raise ConfigurationError(f"{source}: key #{number} ({name}) repeats another key")
        hashes.add(digest)
        keys.append(ApiKey(name=name, role=role, sha256=digest))
    return keys


def read_keys(path: Path) -> list[ApiKey]:
    """The keys configured in ``path`` (a TOML file of ``[[keys]]`` tables)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"keys file {path} does not exist; make one with `learning-machines keys add "
            f"--file {path} --name USER`"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"keys file {path} is not valid TOML: {exc}") from exc
    return _parse(data.get("keys", []), source=str(path))


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def write_keys(path: Path, keys: Sequence[ApiKey]) -> None:
    """Write ``keys`` to ``path`` (hashes only), readable by its owner alone."""
    lines = [
        "# Learning Machines API keys: only SHA-256 hashes are stored here.",
        "# Make keys with `learning-machines keys add`; delete a table to revoke a key.",
    ]
    for key in keys:
        lines += [
            "",
            "[[keys]]",
            f"name = {_quote(key.name)}",
            f"role = {_quote(key.role.value)}",
            f"sha256 = {_quote(key.sha256)}",
        ]
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


class KeyRing:
    """Looks bearer keys up; built from keys, or from a file re-read when it changes."""

    def __init__(self, keys: Iterable[ApiKey] = (), *, path: Path | None = None) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._by_hash: dict[str, Principal] = {}
        self._set(list(keys))
        if path is not None:
            self._reload()

    @classmethod
    def from_file(cls, path: str | Path) -> KeyRing:
        """The keys of a keys file (see the module docstring); checked now, re-read on change."""
        return cls(path=Path(path))

    def _set(self, keys: list[ApiKey]) -> None:
        self._by_hash = {key.sha256: key.principal for key in keys}

    def _reload(self) -> None:
        assert self._path is not None
        stat = self._path.stat() if self._path.exists() else None
        stamp = (stat.st_mtime_ns, stat.st_size) if stat else (0, 0)
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp != self._stamp:
                self._set(read_keys(self._path))
                self._stamp = stamp

    def __len__(self) -> int:
        return len(self._by_hash)

    def authenticate(self, key: str | None) -> Principal | None:
        """The principal of ``key``, or ``None`` for a missing or unknown key."""
        if not key:
            return None
        if self._path is not None:
            self._reload()
        # A dict lookup by hash: the lookup time tells nothing about the secret.
        return self._by_hash.get(hash_key(key))
