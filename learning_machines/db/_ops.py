"""Operations on a backend, as typed data.

Every read and write a store or the machine makes is one of these frozen dataclasses. A backend
implements a single method, :meth:`~learning_machines.db.Db._execute`, that runs a list of them in
one transaction. ``Op[T]`` says that running the op returns a ``T``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from ..exceptions import ConflictError
from ._fusion import DEFAULT_KEYWORD_WEIGHT
from ._records import (
    Change,
    HistoryEntry,
    Learning,
    LearningFilter,
    LearningLocation,
    LearningStatus,
    Message,
    PendingWork,
    Proposal,
    ProposalStatus,
    ScoredLearning,
    WorkStatus,
)

__all__ = [
    "AddEvidence",
    "AppendMessage",
    "ClaimWork",
    "CountLearnings",
    "CountWork",
    "DeleteLearnings",
    "EnqueueWork",
    "FailWork",
    "FinishWork",
    "GetLearnings",
    "GetMessage",
    "GetProposal",
    "ListEmbedders",
    "ListHistory",
    "ListLearnings",
    "ListMessages",
    "ListProposals",
    "ListScopes",
    "ListUserMessages",
    "ListWork",
    "LocateLearnings",
    "MarkRecalled",
    "MatchIds",
    "Op",
    "PatchContent",
    "PurgeUser",
    "PutHistory",
    "PutLearning",
    "PutProposal",
    "ReleaseWork",
    "ScopeCount",
    "SearchLearnings",
    "SetEmbeddings",
    "SetEvidence",
    "UpdateWork",
    "version_conflict",
]

T = TypeVar("T")


class Op(Generic[T]):
    """Base of every operation; ``T`` is what running it returns."""

    __slots__ = ()


# --- learnings -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PutLearning(Op[Learning]):
    """Insert a learning, or replace the row with the same id; records ``change`` in its history.

    The history entry keeps the previous row, so nothing is ever lost by a put. Returns the row
    as stored, with its new ``version``.

    Read-modify-write callers pass the ``version`` they read as ``expected_version``: the put
    then applies only if the stored row is still that version, and otherwise raises
    :class:`~learning_machines.exceptions.ConflictError` (the whole transaction is rolled back),
    so two writers never silently overwrite each other. Example::

        row = db.run(GetLearnings(ids=(i,), filter=f))[0]
        db.run(PutLearning(learning=changed(row), change=c, expected_version=row.version))
    """

    learning: Learning
    """The full new row."""
    change: Change
    """Why, and who, for the history."""
    expected_version: int | None = None
    """``None``: write whatever is stored (insert or replace). ``0``: create the row; fail if a
    row with this id exists. ``n > 0``: replace the row only if its stored version is ``n``."""


def version_conflict(op: PutLearning, stored: int | None) -> ConflictError | None:
    """The error to raise when ``op`` may not replace a row at ``stored`` version (``None``: none).

    ``stored`` is ``None`` when no row with the id exists.
    """
    expected = op.expected_version
    if expected is None or expected == (stored or 0):
        return None
    lid = op.learning.id
    if stored is None:
        message = (
            f"Learning {lid!r} was expected at version {expected} but no longer exists (it was "
            "deleted or never stored). Nothing was written; read it again before changing it."
        )
    elif expected == 0:
        message = (
            f"Learning {lid!r} already exists (version {stored}); another writer created it "
            "first. Nothing was written; read it and apply your change to what is stored."
        )
    else:
        message = (
            f"Learning {lid!r} changed since it was read (version {expected}, now {stored}): "
            "another writer got there first. Nothing was written; read it again and re-apply "
            "your change."
        )
    return ConflictError(message, learning_id=lid)


@dataclass(frozen=True, kw_only=True)
class GetLearnings(Op[list[Learning]]):
    """Rows with these ids, in the order given (missing ids are skipped), whatever their status.

    Reads through a filter: a row the filter's namespace rule hides is skipped like a missing one.
    """

    ids: tuple[str, ...]
    """Ids to get."""
    filter: LearningFilter
    """Isolation still applies (use ``LearningFilter(namespaces=..., reader_user_id=...)``)."""


@dataclass(frozen=True, kw_only=True)
class ListLearnings(Op[list[Learning]]):
    """Rows matching a filter, newest first (by ``order_by``), deterministic ties by id."""

    filter: LearningFilter
    """Which rows."""
    limit: int | None = 100
    """At most this many; ``None`` for all."""
    offset: int = 0
    """Skip this many first."""
    order_by: Literal["created_at", "updated_at", "valid_from"] = "updated_at"
    """Column to order by, descending."""
    ascending: bool = False
    """Oldest first instead."""


@dataclass(frozen=True, kw_only=True)
class CountLearnings(Op[int]):
    """Number of rows matching a filter."""

    filter: LearningFilter
    """Which rows."""


@dataclass(frozen=True, kw_only=True)
class SearchLearnings(Op[list[ScoredLearning]]):
    """Hybrid search: keyword (BM25 / tsvector) and vector candidates fused into one ranking.

    The filter is applied inside both candidate queries, so a user with few rows among millions
    still gets their top ``limit``. Fusion is z-score normalised and weighted
    (``keyword_weight`` for keyword, ``1 - keyword_weight`` for vector), weights measured on
    LoCoMo.
    """

    filter: LearningFilter
    """Which rows may be found."""
    query: str
    """Text of the query (keyword side)."""
    vector: tuple[float, ...] | None = None
    """Query embedding (vector side); ``None`` searches by keyword only."""
    embedder: str | None = None
    """Name of the embedder of ``vector``; rows embedded by another one raise an error."""
    limit: int = 10
    """Results to return."""
    method: Literal["hybrid", "keyword", "vector"] = "hybrid"
    """Which signals to use."""
    keyword_weight: float = DEFAULT_KEYWORD_WEIGHT
    """Weight of the keyword side in hybrid fusion (0.6: measured, see ``db/_fusion.py``)."""
    candidates: int = 50
    """Candidates taken from each side before fusion."""
    exact: bool = False
    """Skip the side indexes of large shared namespaces and rank in SQL (the reference the
    indexes are checked against; slower, same isolation)."""


@dataclass(frozen=True, kw_only=True)
class DeleteLearnings(Op[int]):
    """Delete rows by id (hard delete; their history keeps the old row). Returns rows deleted."""

    ids: tuple[str, ...]
    """Ids to delete."""
    change: Change
    """Why, and who, for the history."""


@dataclass(frozen=True, kw_only=True)
class MarkRecalled(Op[None]):
    """Count a recall of these learnings (a decay signal). Does not touch ``updated_at``."""

    ids: tuple[str, ...]
    """Ids recalled."""
    at: datetime
    """When."""


@dataclass(frozen=True, kw_only=True)
class AddEvidence(Op[int]):
    """Add outcome evidence to learnings (credit from a rated turn). Returns rows changed.

    ``helpful`` and ``harmful`` are added to the columns of the same name (negative values take
    evidence back, when a turn is re-rated) and ``feedback`` moves by ``helpful - harmful``.
    Like :class:`MarkRecalled` it touches neither ``updated_at`` nor the history: evidence is a
    usage signal, not a change of what the learning says.
    """

    ids: tuple[str, ...]
    """The learnings credited."""
    helpful: float = 0.0
    """Evidence that they helped, to add."""
    harmful: float = 0.0
    """Evidence that they misled, to add."""


@dataclass(frozen=True, kw_only=True)
class SetEvidence(Op[None]):
    """Set one learning's evidence, only if it still holds the values the caller read.

    Raises :class:`~learning_machines.exceptions.ConflictError` when the stored ``helpful`` or
    ``harmful`` differ from ``expected_helpful`` / ``expected_harmful`` (another writer changed
    them first; the whole transaction is rolled back, so evidence is never counted twice).
    """

    id: str
    """The learning."""
    helpful: float
    """New helpful evidence."""
    harmful: float
    """New harmful evidence."""
    expected_helpful: float
    """What the caller read."""
    expected_harmful: float
    """What the caller read."""


@dataclass(frozen=True, kw_only=True)
class PatchContent(Op[Learning | None]):
    """Set top-level keys of one learning's ``content``, leaving every other column as it is.

    For records that grow after they are written (a decision's rationale, a lesson's support)
    while other writers move their counters: unlike :class:`PutLearning` it never writes back
    stale ``helpful``/``harmful``/``recall_count`` values. ``search_text`` and the embedding are
    unchanged. The change is recorded in the history; ``updated_at`` moves. Returns the row as
    changed, or ``None`` when the filter does not let the reader see it (or it is gone).
    """

    id: str
    """The learning."""
    filter: LearningFilter
    """Isolation still applies (the reader must be allowed to see the row)."""
    patch: dict[str, Any]
    """Keys to set in ``content`` (replacing whole values)."""
    change: Change
    """Why, and who, for the history."""


@dataclass(frozen=True, kw_only=True)
class LocateLearnings(Op[list[LearningLocation]]):
    """Where learnings with these ids live and who owns them, in the order given.

    Maintenance only (like :class:`ListScopes`): it names private owners without a reader, so
    an admin surface can find whose turn an id belongs to before it reads through isolation.
    """

    ids: tuple[str, ...]
    """Ids to locate (missing ids are skipped)."""


@dataclass(frozen=True, kw_only=True)
class ListEmbedders(Op[dict[str, int]]):
    """Embedder names in use among rows matching the filter, with their row counts."""

    filter: LearningFilter = field(default_factory=lambda: LearningFilter(namespaces=None))
    """Which rows (defaults to shared namespaces only; pass ``namespaces=()``-free filters)."""
    all_rows: bool = False
    """Count every row of every namespace, ignoring the filter (maintenance only)."""


@dataclass(frozen=True, kw_only=True)
class SetEmbeddings(Op[int]):
    """Replace the embeddings of rows (re-embedding). Returns rows updated."""

    vectors: tuple[tuple[str, tuple[float, ...]], ...]
    """``(learning_id, vector)`` pairs."""
    embedder: str
    """Name of the embedder that made them."""


@dataclass(frozen=True, kw_only=True)
class ListHistory(Op[list[HistoryEntry]]):
    """The recorded changes of one learning, oldest first."""

    learning_id: str
    """The learning."""


@dataclass(frozen=True, kw_only=True)
class PurgeUser(Op[dict[str, int]]):
    """Forget a user: delete every private row of theirs in every table.

    Deletes their private learnings, the history of those, their messages, pending work and
    proposals. Shared-namespace learnings they authored are kept but lose the link to them
    (``user_id`` and provenance cleared) unless ``delete_shared`` is set. Returns counts per table.
    """

    user_id: str
    """The user to forget."""
    delete_shared: bool = False
    """Also delete shared-namespace learnings they authored."""


@dataclass(frozen=True, kw_only=True)
class ScopeCount:
    """How many learnings one scope holds (see :class:`ListScopes`)."""

    learning_type: str
    """The learning type."""
    namespace: str
    """The namespace."""
    user_id: str | None
    """The owner, for the private namespace; ``None`` for shared namespaces."""
    count: int
    """Rows in the scope with the requested statuses."""


@dataclass(frozen=True, kw_only=True)
class ListScopes(Op[list[ScopeCount]]):
    """Every scope holding learnings: ``(learning_type, namespace, owner)`` with a row count.

    Maintenance only (curation walks every scope): it names private owners without a reader.
    Ordered by learning type, namespace, then owner (``None`` first).
    """

    statuses: tuple[LearningStatus, ...] = ("active",)
    """Count rows with these statuses."""
    learning_types: tuple[str, ...] | None = None
    """Only these learning types."""
    namespaces: tuple[str, ...] | None = None
    """Only these namespaces (``None``: all, private included)."""
    user_id: str | None = None
    """Only private scopes of this user, and shared ones (``None``: every user)."""


#: What :class:`MatchIds` looks up: learning ids (current ones and those only left in history),
#: proposal ids, history entry ids, pending work ids.
IdKind = Literal["learning", "proposal", "history", "work"]


@dataclass(frozen=True, kw_only=True)
class MatchIds(Op[list[str]]):
    """Ids of one kind that start with ``prefix``, in order, at most ``limit``.

    Maintenance only (resolving a short id a person typed): it ignores namespaces. A learning id
    matches while the learning exists or has history (a deleted learning can be restored).
    """

    kind: IdKind
    """Which ids."""
    prefix: str
    """The start of the id (an exact id matches itself)."""
    limit: int = 2
    """At most this many (2 tells a unique prefix from an ambiguous one)."""


@dataclass(frozen=True, kw_only=True)
class PutHistory(Op[int]):
    """Insert history entries as they are (import); an entry whose id exists is skipped.

    Returns the number inserted. Normal writes never need this: :class:`PutLearning` records
    history itself.
    """

    entries: tuple[HistoryEntry, ...]
    """The entries."""


# --- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AppendMessage(Op[Message]):
    """Store a finished turn of a session."""

    message: Message
    """The turn."""


@dataclass(frozen=True, kw_only=True)
class ListMessages(Op[list[Message]]):
    """The last ``limit`` turns of a session, oldest first. Only the session owner's turns."""

    session_id: str
    """The session."""
    user_id: str | None
    """The reading user; turns of another user's session with the same id are never returned."""
    limit: int | None = 50
    """At most this many (the most recent)."""


@dataclass(frozen=True, kw_only=True)
class GetMessage(Op[Message | None]):
    """One stored turn of a session, by its turn id (only the session owner's)."""

    session_id: str
    """The session."""
    user_id: str | None
    """The reading user; another user's turn with the same ids is never returned."""
    turn_id: str
    """The turn."""


@dataclass(frozen=True, kw_only=True)
class ListUserMessages(Op[list[Message]]):
    """Every stored turn of one user, across sessions, oldest first (export)."""

    user_id: str
    """The user."""
    limit: int | None = None
    """At most this many (the oldest)."""


# --- pending work -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EnqueueWork(Op[PendingWork]):
    """Add pending work; with a ``dedupe_key`` already present, returns the existing item."""

    work: PendingWork
    """The item."""


@dataclass(frozen=True, kw_only=True)
class ClaimWork(Op[list[PendingWork]]):
    """Atomically claim claimable items (pending and due, or running with an expired lease).

    Two workers never claim the same item at once. Claiming increments ``attempts``.
    """

    worker_id: str
    """Who claims."""
    kinds: tuple[str, ...] | None = None
    """Only these kinds."""
    limit: int = 1
    """At most this many."""
    lease_seconds: float = 300.0
    """After this long without finishing, the item is claimable again."""
    now: datetime | None = None
    """Current time (tests may set it)."""


@dataclass(frozen=True, kw_only=True)
class FinishWork(Op[None]):
    """Mark a claimed item done."""

    id: str
    """The item."""
    worker_id: str
    """Who finished it (must hold the claim)."""


@dataclass(frozen=True, kw_only=True)
class UpdateWork(Op[PendingWork]):
    """Replace the payload of a claimed item (progress, so a retry resumes instead of redoing).

    Raises :class:`~learning_machines.exceptions.ConflictError` if ``worker_id`` no longer holds
    the claim (its lease ran out and another worker took the item).
    """

    id: str
    """The item."""
    worker_id: str
    """Who holds the claim."""
    payload: dict[str, Any]
    """The new payload."""


@dataclass(frozen=True, kw_only=True)
class FailWork(Op[PendingWork]):
    """Record a failure: back to pending at ``retry_at``, or parked as failed when out of tries."""

    id: str
    """The item."""
    worker_id: str
    """Who failed it (must hold the claim)."""
    error: str
    """What went wrong, for people."""
    raw_output: str | None = None
    """What the model said, if its output was the problem."""
    retry_at: datetime | None = None
    """When to try again; ``None`` parks it as failed now."""


@dataclass(frozen=True, kw_only=True)
class ReleaseWork(Op[int]):
    """Give back every item a worker holds (it is stopping): pending again, attempt not counted.

    Returns how many items were released.
    """

    worker_id: str
    """The worker that is stopping."""


@dataclass(frozen=True, kw_only=True)
class ListWork(Op[list[PendingWork]]):
    """Pending work items, oldest first."""

    statuses: tuple[WorkStatus, ...] | None = None
    """Only these statuses."""
    kinds: tuple[str, ...] | None = None
    """Only these kinds."""
    limit: int | None = 100
    """At most this many."""


@dataclass(frozen=True, kw_only=True)
class CountWork(Op[int]):
    """Number of items with these statuses."""

    statuses: tuple[WorkStatus, ...] = ("pending", "running")
    """Which statuses."""
    kinds: tuple[str, ...] | None = None
    """Only these kinds."""


# --- proposals --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PutProposal(Op[Proposal]):
    """Insert or update a proposal.

    With ``expected_status`` set, the update happens only if the stored status still equals it;
    otherwise :class:`~learning_machines.exceptions.ValidationError` is raised (two reviewers
    deciding at once: one wins, the other is told).
    """

    proposal: Proposal
    """The full row."""
    expected_status: ProposalStatus | None = None
    """Status the stored row must have for the update to apply."""


@dataclass(frozen=True, kw_only=True)
class GetProposal(Op[Proposal | None]):
    """One proposal by id."""

    id: str
    """The proposal."""


@dataclass(frozen=True, kw_only=True)
class ListProposals(Op[list[Proposal]]):
    """Proposals, newest first."""

    statuses: tuple[ProposalStatus, ...] | None = ("pending",)
    """Only these statuses (``None`` for all)."""
    user_id: str | None = None
    """Only these proposed in this user's turns."""
    session_id: str | None = None
    """Only these proposed in this session."""
    store: str | None = None
    """Only these for this store slot."""
    mode: str | None = None
    """Only ``propose`` or only ``hitl``."""
    limit: int | None = 100
    """At most this many."""


def check_ops(ops: Sequence[Op[Any]]) -> None:
    """Raise ``TypeError`` if anything in ``ops`` is not an operation."""
    for op in ops:
        if not isinstance(op, Op):
            raise TypeError(f"{op!r} is not a learning_machines.db operation")
