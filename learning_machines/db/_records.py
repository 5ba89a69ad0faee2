"""The rows a backend keeps: learnings, their history, pending work, messages and proposals.

These are plain frozen dataclasses with no I/O. Stores build them; backends persist them.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "ALL_STATUSES",
    "GLOBAL_NAMESPACE",
    "PRIVATE_NAMESPACE",
    "Change",
    "HistoryEntry",
    "Learning",
    "LearningFilter",
    "LearningLocation",
    "LearningStatus",
    "Message",
    "PendingWork",
    "Proposal",
    "ProposalStatus",
    "ScoredLearning",
    "WorkStatus",
    "content_hash",
    "new_id",
    "normalize_text",
    "stable_id",
    "utcnow",
]

#: The namespace private to the ``user_id`` of the turn.
PRIVATE_NAMESPACE = "user"
#: The namespace shared by everyone.
GLOBAL_NAMESPACE = "global"

LearningStatus = Literal["active", "archived", "superseded"]
#: Every status a learning can have (``LearningFilter(statuses=ALL_STATUSES)`` reads them all).
ALL_STATUSES: tuple[LearningStatus, ...] = ("active", "archived", "superseded")
ProposalStatus = Literal["pending", "approved", "rejected", "expired"]
WorkStatus = Literal["pending", "running", "done", "failed"]


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (all stored times are UTC)."""
    return datetime.now(UTC)


def new_id() -> str:
    """A new random id (32 hex characters)."""
    return uuid.uuid4().hex


_SPACES = re.compile(r"\s+")
_PUNCT_END = re.compile(r"[\s.!?;:,]+$")


def normalize_text(text: str) -> str:
    """Lower-case, NFKC-normalised, whitespace-collapsed text without trailing punctuation.

    Two learnings whose normalised search texts are equal are exact duplicates.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _SPACES.sub(" ", text).strip()
    return _PUNCT_END.sub("", text)


def stable_id(*parts: str | None) -> str:
    """Return a deterministic 32-hex id from ``parts`` (so one row per user, per session, per name).

    Every id that scopes a private row includes the owner's ``user_id``, so two users can never
    address the same row, whatever session id or name they use.
    """
    joined = "\x1f".join("" if p is None else p for p in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


def content_hash(text: str) -> str:
    """SHA-256 (hex, first 32 characters) of :func:`normalize_text` of ``text``."""
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, kw_only=True)
class Learning:
    """One stored learning: a row of the ``learnings`` table.

    Scope columns say who may read it: ``namespace`` is ``"user"`` (private to ``user_id``),
    ``"global"``, or a shared name such as ``"engineering"``. In a shared namespace ``user_id``
    records who it came from, and does not restrict readers.
    """

    id: str = field(default_factory=new_id)
    """Unique id of the learning."""
    learning_type: str
    """Which store owns it (``"user_profile"``, ``"entity_fact"``, a custom store's type …)."""
    namespace: str = PRIVATE_NAMESPACE
    """Where it lives: ``"user"`` (private), ``"global"`` or a shared namespace name."""
    content: dict[str, Any] = field(default_factory=dict)
    """The store's own JSON content."""
    search_text: str = ""
    """Text used for keyword search, embedding and exact-duplicate detection."""
    user_id: str | None = None
    """Owner in the private namespace; author in shared namespaces."""
    session_id: str | None = None
    """Session it belongs to, for per-session learnings."""
    agent_id: str | None = None
    """Agent it belongs to, when a store scopes by agent."""
    team_id: str | None = None
    """Team it belongs to, when a store scopes by team."""
    entity_id: str | None = None
    """Entity it is about (entity memory), or ``None``."""
    embedding: tuple[float, ...] | None = None
    """Vector of ``search_text``; ``None`` when the store does not use vector search."""
    embedder: str | None = None
    """Name of the embedder that made ``embedding``; mixing embedders is refused."""
    status: LearningStatus = "active"
    """``active`` learnings are recalled; ``archived`` and ``superseded`` ones are history."""
    valid_from: datetime | None = None
    """When it became true in the world, when known."""
    valid_to: datetime | None = None
    """When it stopped being true in the world (set when superseded)."""
    superseded_by: str | None = None
    """Id of the learning that replaced this one."""
    created_at: datetime = field(default_factory=utcnow)
    """When we learned it."""
    updated_at: datetime = field(default_factory=utcnow)
    """When it last changed."""
    recall_count: int = 0
    """How often it was recalled into a context."""
    last_recalled_at: datetime | None = None
    """When it was last recalled."""
    feedback: float = 0.0
    """Net feedback: ``helpful - harmful`` (positive is useful)."""
    helpful: float = 0.0
    """Evidence that it helped: the trust-weighted outcomes of good turns that recalled it."""
    harmful: float = 0.0
    """Evidence that it misled: the trust-weighted outcomes of bad turns that recalled it."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """Where it came from: ``user_id``, ``session_id``, ``turn_id``, ``mode``, ``store``, ``model``;
    merged learnings keep a list under ``"merged"``."""
    version: int = field(default=0, compare=False)
    """How many times the stored row was written (``0``: never stored). The backend sets it on
    every write; pass the version you read as ``PutLearning(expected_version=...)`` to write only
    if nobody changed the row since. Not compared by ``==`` (two equal rows are equal whatever
    their write count)."""

    @property
    def content_hash(self) -> str:
        """Hash of the normalised search text, used to refuse exact duplicates."""
        return content_hash(self.search_text)


@dataclass(frozen=True, kw_only=True)
class LearningLocation:
    """Where a learning lives and who owns it (maintenance reads, see ``LocateLearnings``)."""

    id: str
    """The learning."""
    learning_type: str
    """Its learning type."""
    namespace: str
    """Its namespace."""
    user_id: str | None
    """Its owner (private namespace) or author (shared ones)."""
    status: LearningStatus
    """Its status."""


@dataclass(frozen=True, kw_only=True)
class ScoredLearning:
    """A learning found by a search, with the scores that ranked it."""

    learning: Learning
    """The learning found."""
    score: float
    """Fused score; higher is better. Comparable only within one search."""
    keyword_score: float | None = None
    """Raw keyword score (BM25 / ts_rank), ``None`` when it did not match by keyword."""
    vector_score: float | None = None
    """Cosine similarity, ``None`` when it was not a vector candidate."""


@dataclass(frozen=True, kw_only=True)
class LearningFilter:
    """Which learnings a read may see. Applied inside the query, never after a top-k.

    Namespace rule, enforced by every backend: the private namespace ``"user"`` matches only rows
    whose ``user_id`` equals ``reader_user_id``; reading it without ``reader_user_id`` raises
    :class:`~learning_machines.exceptions.IsolationError`. Shared namespaces match every reader.
    """

    namespaces: tuple[str, ...] | None = None
    """Namespaces to read; ``None`` means every *shared* namespace plus the reader's private one."""
    reader_user_id: str | None = None
    """The user reading: gates the private namespace."""
    learning_types: tuple[str, ...] | None = None
    """Only these learning types."""
    user_id: str | None = None
    """Only rows with this ``user_id`` (owner or author), in whatever namespace."""
    session_id: str | None = None
    """Only rows of this session."""
    agent_id: str | None = None
    """Only rows of this agent."""
    team_id: str | None = None
    """Only rows of this team."""
    entity_ids: tuple[str, ...] | None = None
    """Only rows about these entities."""
    ids: tuple[str, ...] | None = None
    """Only these ids."""
    statuses: tuple[LearningStatus, ...] = ("active",)
    """Only rows with these statuses (default: active)."""
    as_of: datetime | None = None
    """Time travel: rows that existed and were valid at this time, whatever their status now.

    A row matches when ``created_at <= as_of`` and it was not yet retired then (it is active, or
    its ``updated_at`` — when it was superseded or archived — is after ``as_of``), and
    ``valid_from``/``valid_to`` (when set) enclose ``as_of``. ``statuses`` is ignored. Rows come
    back with their current content: exact for facts (never edited in place; a change is a new
    row superseding the old), while earlier states of rows updated in place are in their history.
    """
    content_hash: str | None = None
    """Only rows whose normalised search text has this hash."""
    provenance_user_id: str | None = None
    """Only rows whose provenance names this user (for forget/export of shared learnings)."""
    happened_between: tuple[datetime, datetime] | None = None
    """Only rows whose time — ``valid_from`` when set, else ``created_at`` — lies in
    ``[start, end)``: for an episode, when it was said. Naive datetimes are taken as UTC."""


@dataclass(frozen=True, kw_only=True)
class Change:
    """Why a write happens and who makes it; recorded in the history of the learning."""

    action: str
    """``create``, ``update``, ``supersede``, ``merge``, ``archive``, ``restore``, ``delete`` …"""
    actor: dict[str, Any] = field(default_factory=dict)
    """Who or what made it: ``store``, ``mode``, ``model``, ``user_id``, ``reviewer`` …"""
    reason: str = ""
    """Why, in words."""
    turn_id: str | None = None
    """The turn it came from, when it came from one."""


@dataclass(frozen=True, kw_only=True)
class HistoryEntry:
    """One recorded change of a learning."""

    id: str
    """Id of the entry."""
    learning_id: str
    """The learning changed."""
    action: str
    """What happened (see :class:`Change`)."""
    old: dict[str, Any] | None
    """The learning before (all columns but the embedding), ``None`` on create."""
    new: dict[str, Any] | None
    """The learning after, ``None`` on delete."""
    actor: dict[str, Any]
    """Who or what made the change."""
    reason: str
    """Why."""
    turn_id: str | None
    """The turn it came from."""
    user_id: str | None
    """The user whose learning it is (owner or author), for forget."""
    created_at: datetime
    """When."""


@dataclass(frozen=True, kw_only=True)
class PendingWork:
    """Durable work for a worker: extraction of a finished turn, a curation run and so on."""

    id: str = field(default_factory=new_id)
    """Id of the work item."""
    kind: str
    """``"extract"``, ``"curate"`` …"""
    payload: dict[str, Any]
    """What the worker needs, as JSON."""
    dedupe_key: str | None = None
    """Enqueueing the same key twice keeps one item (so a retry never applies a turn twice)."""
    user_id: str | None = None
    """Whose turn it is, for forget."""
    status: WorkStatus = "pending"
    """``pending`` → ``running`` → ``done`` or ``failed`` (parked, error visible)."""
    attempts: int = 0
    """How many times it was claimed."""
    max_attempts: int = 5
    """After this many failures it is parked as ``failed``."""
    not_before: datetime = field(default_factory=utcnow)
    """Not claimed before this time (backoff)."""
    locked_by: str | None = None
    """Worker holding it while ``running``."""
    locked_until: datetime | None = None
    """A running item whose lease expired is claimable again (its worker died)."""
    last_error: str | None = None
    """The last error, for people to read."""
    raw_output: str | None = None
    """What the model said when its output did not validate."""
    created_at: datetime = field(default_factory=utcnow)
    """When it was enqueued."""
    updated_at: datetime = field(default_factory=utcnow)
    """When it last changed."""


@dataclass(frozen=True, kw_only=True)
class Message:
    """One turn of a session's conversation, kept so the agent remembers the session."""

    id: str = field(default_factory=new_id)
    """Id of the row."""
    session_id: str
    """The session."""
    user_id: str | None
    """The user of the session (a session is owned by one user)."""
    agent_id: str | None = None
    """The agent."""
    turn_id: str
    """The turn."""
    turn_index: int = 0
    """Position of the turn within its session, from 0."""
    user_message: str
    """What the user said."""
    assistant_message: str
    """What the agent answered."""
    messages_json: str = "[]"
    """The full pydantic-ai message list of the turn (tool calls and results included), as JSON."""
    created_at: datetime = field(default_factory=utcnow)
    """When the turn finished."""


@dataclass(frozen=True, kw_only=True)
class Proposal:
    """A write that waits for approval (PROPOSE and HITL modes). Never recalled until approved."""

    id: str = field(default_factory=new_id)
    """Id of the proposal."""
    learning_type: str
    """Store it is for."""
    store: str
    """Name of the store slot in the machine (``"learned_knowledge"`` …)."""
    mode: str
    """``propose`` or ``hitl``."""
    namespace: str
    """Where the learning would be written."""
    user_id: str | None
    """The user whose turn proposed it."""
    session_id: str | None
    """The session that proposed it."""
    turn_id: str | None
    """The turn that proposed it; chat approval must come in a later turn."""
    turn_index: int | None = None
    """Index of that turn within its session."""
    payload: dict[str, Any]
    """What the store needs to apply it."""
    summary: str = ""
    """One line a person can judge it by."""
    status: ProposalStatus = "pending"
    """``pending``, ``approved``, ``rejected`` or ``expired`` (all kept for audit)."""
    decided_by: str | None = None
    """Who approved or rejected it."""
    decided_at: datetime | None = None
    """When."""
    decision_note: str | None = None
    """The confirming user message (chat) or the reviewer's note."""
    learning_id: str | None = None
    """The learning written on approval."""
    created_at: datetime = field(default_factory=utcnow)
    """When it was proposed."""
    expires_at: datetime | None = None
    """After this it can no longer be approved."""
