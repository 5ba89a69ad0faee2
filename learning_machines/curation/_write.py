"""Writing a learning with curation on the way in: exact and near duplicates, supersession.

Every built-in store saves rows through :func:`write_learning`, never with a bare ``PutLearning``,
so duplicates are refused and merges keep both provenances in one place.

Near-duplicate threshold, calibrated with ``python benchmarks/calibrate_dedup.py`` on 30
paraphrase pairs and 30 different-fact pairs (20 of them the same attribute with another value)
with the default embedder (all-MiniLM-L6-v2, int8 ONNX)::

    cosine only:      no false merge above 0.967 (3/30 paraphrases merged there)
    cosine + guards:  no false merge above 0.871
    at 0.88 + guards: 14/30 paraphrases merged, 0/30 false merges  <- the default
    at 0.80 + guards: 20/30 paraphrases merged, 1/30 false merges

On 60 pairs written later and never tuned on, 0.88 + guards merged 15/30 paraphrases and
3/30 different facts ("Slack, not email" / "email, not Slack", "this week" / "last week",
"Index ..." / "Drop the index ..."): similarity and guards cannot decide this band. A
:class:`~learning_machines.curation.DedupJudge` in a curation run does
(:mod:`._judge`).

Similarity alone cannot tell "lives in London" from "lives in Berlin" (cosine 0.7–0.97 for such
pairs), hence the lexical guards of :mod:`._similar`. Pairs in the ambiguous band
(``confirm_threshold`` ≤ cosine < threshold, or guarded pairs above it) are merged only if the
optional ``confirm`` hook (e.g. :func:`model_confirmation`) says so.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, TypeVar

from ..db import (
    PRIVATE_NAMESPACE,
    Change,
    Db,
    GetLearnings,
    Learning,
    LearningFilter,
    ListLearnings,
    PutLearning,
    SearchLearnings,
    normalize_text,
)
from ..embedders import Embedder, aembed
from ..exceptions import ConflictError, IsolationError
from ._decay import NEAR_DUPLICATE_THRESHOLD
from ._similar import cosine, distinguishing, richness

__all__ = [
    "CONFLICT_ATTEMPTS",
    "Confirm",
    "WritePolicy",
    "WriteResult",
    "conflict_key_of",
    "merge_learnings",
    "model_confirmation",
    "names_of",
    "retry_conflicts",
    "supersede_learning",
    "write_learning",
]

_log = logging.getLogger("learning_machines")
T = TypeVar("T")

#: How many times a read-modify-write is tried before a lost race becomes a ``ConflictError``.
#: Eight writers hammering one row on a loaded 2-core machine needed up to 31 tries each.
CONFLICT_ATTEMPTS = 100
# Backoff between tries: full jitter over an exponentially growing window, capped low so that a
# writer that lost many times is not left out while the others keep winning (about 5 s in all
# before giving up).
_BACKOFF_FIRST = 0.002
_BACKOFF_MAX = 0.1

#: A hook that decides whether two learnings are the same thing: ``(existing, new) -> bool``.
Confirm = Callable[[Learning, Learning], Awaitable[bool]]


@dataclass(frozen=True, kw_only=True)
class WritePolicy:
    """How a store's writes are curated."""

    embed: bool = True
    """Embed ``search_text`` when the learning has no embedding yet."""
    dedupe_exact: bool = True
    """Refuse a second learning with the same normalised text in the same scope."""
    merge_near: bool = True
    """Merge a near duplicate (same scope, similar embedding) into the existing row."""
    near_duplicate_threshold: float = NEAR_DUPLICATE_THRESHOLD
    """Cosine at or above which (and without a lexical guard) two learnings are merged.

    Calibrated for the default MiniLM embedder; other embedders may need another value."""
    confirm_threshold: float = 0.75
    """Lower end of the ambiguous band handed to ``confirm`` (when it is set)."""
    confirm: Confirm | None = None
    """Decides merges similarity cannot: ``await confirm(existing, new)``; see
    :func:`model_confirmation`."""
    conflict_key: str | None = None
    """Content field naming what a fact is about (``"attribute"``, ``"field"``). A new fact with
    the same key and another value supersedes the old one. ``content["conflict_key"]`` on the
    learning itself wins over this."""
    value_key: str = "value"
    """Content field holding the fact's value; equal values under one key are merged, not
    superseded. Without it, any change of text under one key supersedes."""
    match_names: bool | None = None
    """Merge learnings whose ``content["name"]``/``content["aliases"]`` overlap (entities).
    ``None``: on for learning type ``"entity"``."""
    candidates: int = 5
    """Nearest rows compared with a new learning."""


@dataclass(frozen=True, kw_only=True)
class WriteResult:
    """What :func:`write_learning` did."""

    learning: Learning
    """The row now stored (the existing one, for a duplicate or a merge)."""
    action: Literal["created", "updated", "duplicate", "merged", "superseded"]
    """What happened: ``superseded`` means the new row was created and replaced older ones."""
    affected: tuple[str, ...] = ()
    """Other learnings changed on the way (superseded ones)."""
    similarity: float | None = None
    """Cosine with the row merged into, for a near-duplicate merge."""


# --- pure helpers -------------------------------------------------------------------------------


def conflict_key_of(learning: Learning, policy: WritePolicy) -> str | None:
    """Return what ``learning`` is a fact about, normalised (entity included), or ``None``."""
    raw = learning.content.get("conflict_key")
    if raw is None and policy.conflict_key is not None:
        raw = learning.content.get(policy.conflict_key)
    if raw is None or raw == "":
        return None
    return f"{learning.entity_id or ''}\x00{normalize_text(str(raw))}"


def names_of(learning: Learning) -> set[str]:
    """Normalised ``content["name"]`` and ``content["aliases"]`` of an entity-like learning."""
    names: set[str] = set()
    name = learning.content.get("name")
    if isinstance(name, str) and name.strip():
        names.add(normalize_text(name))
    aliases = learning.content.get("aliases")
    if isinstance(aliases, list | tuple):
        names.update(normalize_text(a) for a in aliases if isinstance(a, str) and a.strip())
    return names


def _aliases(learning: Learning) -> list[Any]:
    aliases = learning.content.get("aliases")
    return list(aliases) if isinstance(aliases, list | tuple) else []


def _same_value(a: Learning, b: Learning, policy: WritePolicy) -> bool:
    va, vb = a.content.get(policy.value_key), b.content.get(policy.value_key)
    if va is None or vb is None:
        return False
    return normalize_text(str(va)) == normalize_text(str(vb))


def merge_learnings(
    existing: Learning, new: Learning, *, now: datetime, similarity: float | None = None
) -> Learning:
    """``existing`` with ``new`` folded in: the richer text, both provenances, aliases united.

    The id, counters and validity of ``existing`` are kept. ``provenance["merged"]`` gains one
    entry per merge with the other row's id, text and provenance, so nothing is lost.
    """
    keep_new = richness(new.search_text) > richness(existing.search_text)
    source = new if keep_new else existing
    dropped = existing if keep_new else new
    content = dict(source.content)
    names = names_of(existing) | names_of(new)
    if names and "name" in content:
        primary = normalize_text(str(content["name"]))
        aliases = {a for x in (existing, new) for a in _aliases(x) if isinstance(a, str)}
        aliases |= {str(x["name"]) for x in (existing.content, new.content) if x.get("name")}
        content["aliases"] = sorted(a for a in aliases if normalize_text(a) != primary)
    entry: dict[str, Any] = {
        "id": new.id,
        "text": dropped.search_text,
        "provenance": dict(new.provenance),
        "at": now.isoformat(),
        "kept": "new" if keep_new else "existing",
    }
    if similarity is not None:
        entry["similarity"] = round(similarity, 4)
    provenance = dict(existing.provenance)
    provenance["merged"] = [*existing.provenance.get("merged", []), entry]
    return replace(
        existing,
        content=content,
        search_text=source.search_text,
        embedding=source.embedding,
        embedder=source.embedder,
        provenance=provenance,
        updated_at=now,
    )


def supersede_learning(old: Learning, new: Learning, *, now: datetime) -> Learning:
    """``old`` retired by ``new``: status ``superseded``, ``valid_to`` and a pointer to ``new``.

    ``valid_to`` is when the new fact became true (``new.valid_from``, else ``now``), never
    before ``old.valid_from``.
    """
    end = new.valid_from or now
    if old.valid_from is not None and end < old.valid_from:
        end = old.valid_from
    return replace(old, status="superseded", valid_to=end, superseded_by=new.id, updated_at=now)


def model_confirmation(model: str | Any) -> Confirm:
    """Build a ``confirm`` hook that asks a language model whether two learnings say the same thing.

    ``model`` is a pydantic-ai model or a ``"provider:name"`` string; the model answers a bool.
    """
    from pydantic_ai import Agent

    agent: Agent[None, bool] = Agent(
        model,
        output_type=bool,
        instructions=(
            "You deduplicate a memory store. Answer true only if the two statements state the "
            "same fact (a paraphrase, or one adds detail to the other without contradicting "
            "it). Answer false if they differ in any value, time, person or place."
        ),
    )

    async def confirm(existing: Learning, new: Learning) -> bool:
        result = await agent.run(
            f"Statement A: {existing.search_text}\nStatement B: {new.search_text}"
        )
        return bool(result.output)

    return confirm


# --- optimistic concurrency -----------------------------------------------------------------------


async def retry_conflicts(
    attempt: Callable[[], Awaitable[T]],
    *,
    what: str,
    attempts: int = CONFLICT_ATTEMPTS,
    pass_through: str | None = None,
) -> T:
    """Run a read-modify-write until it wins against concurrent writers; return its result.

    ``attempt`` reads what it changes, and writes with ``PutLearning(expected_version=...)``
    (through :func:`write_learning`). When another writer changed the row in between, the put
    raises :class:`ConflictError` and nothing is written: ``attempt`` runs again on a fresh read,
    after a short random wait. After ``attempts`` lost races the error is raised, naming
    ``what`` (e.g. ``"the profile of user 'alice'"``). A conflict on the learning
    ``pass_through`` is raised at once (a row the caller read, so only the caller can re-read).
    """
    for n in range(1, attempts + 1):
        try:
            return await attempt()
        except ConflictError as exc:
            if pass_through is not None and exc.learning_id == pass_through:
                raise
            if n >= attempts:
                raise ConflictError(
                    f"Could not update {what}: other writers changed it first {attempts} times "
                    f"in a row ({exc}). Nothing of this update was written; retry it later.",
                    learning_id=exc.learning_id,
                ) from exc
            _log.debug("write conflict on %s (try %d of %d): %s", what, n, attempts, exc)
            await asyncio.sleep(random.uniform(0, min(_BACKOFF_MAX, _BACKOFF_FIRST * 2**n)))
    raise AssertionError("unreachable")  # pragma: no cover


# --- the write ------------------------------------------------------------------------------------


def _narrow(scope: LearningFilter, learning: Learning) -> LearningFilter:
    """Limit the scope to the learning's own namespace, owner and type, active rows only."""
    if learning.namespace == PRIVATE_NAMESPACE:
        if learning.user_id is None:
            raise IsolationError(
                "A private learning (namespace 'user') needs its user_id; pass user_id=... "
                "in the Learning."
            )
        if scope.reader_user_id not in (None, learning.user_id):
            raise IsolationError(
                f"write_learning: the scope reads user {scope.reader_user_id!r} but the learning "
                f"belongs to {learning.user_id!r}; private learnings are only compared with "
                "their owner's."
            )
    return replace(
        scope,
        namespaces=(learning.namespace,),
        reader_user_id=learning.user_id if learning.namespace == PRIVATE_NAMESPACE else None,
        learning_types=(learning.learning_type,),
        statuses=("active",),
        as_of=None,
        ids=None,
        content_hash=None,
    )


async def _near_candidates(
    db: Db, learning: Learning, scope: LearningFilter, policy: WritePolicy
) -> list[tuple[float, Learning]]:
    if learning.embedding is None:
        return []
    found = await db.arun(
        SearchLearnings(
            filter=scope,
            query=learning.search_text,
            vector=learning.embedding,
            embedder=learning.embedder,
            limit=policy.candidates,
            method="vector",
        )
    )
    out: list[tuple[float, Learning]] = []
    for s in found:
        row = s.learning
        if row.id == learning.id or row.embedding is None:
            continue
        sim = (
            s.vector_score
            if s.vector_score is not None
            else cosine(row.embedding, learning.embedding)
        )
        out.append((sim, row))
    return sorted(out, key=lambda t: -t[0])


async def _find_merge(
    db: Db, learning: Learning, scope: LearningFilter, policy: WritePolicy, key: str | None
) -> tuple[Learning, float | None] | None:
    match_names = (
        policy.match_names if policy.match_names is not None else learning.learning_type == "entity"
    )
    names = names_of(learning) if match_names else set()
    if names:
        for row in await db.arun(ListLearnings(filter=scope, limit=None)):
            if row.id != learning.id and names & names_of(row):
                return row, None
    if not policy.merge_near:
        return None
    for sim, row in await _near_candidates(db, learning, scope, policy):
        if sim < min(policy.confirm_threshold, policy.near_duplicate_threshold):
            break
        row_key = conflict_key_of(row, policy)
        if key is not None and row_key is not None and row_key != key:
            continue  # facts about different attributes are never one fact
        sure = sim >= policy.near_duplicate_threshold and not distinguishing(
            row.search_text, learning.search_text
        )
        if sure or (policy.confirm is not None and await policy.confirm(row, learning)):
            return row, sim
    return None


async def write_learning(
    *,
    db: Db,
    embedder: Embedder | None,
    learning: Learning,
    change: Change,
    scope: LearningFilter,
    policy: WritePolicy | None = None,
    supersedes: Sequence[str] = (),
    expected_version: int | None = None,
) -> WriteResult:
    """Store ``learning`` unless the same thing is already known within ``scope``.

    ``scope`` is the filter of rows that count as "the same place"; it is always narrowed to the
    learning's namespace, type and (for private rows) owner, so two users' private learnings are
    never compared. For a new learning (``change.action == "create"``), in this order:

    1. an exact duplicate (same normalised text) is not stored again (``"duplicate"``);
    2. rows with the same conflict key and another value, and the ids in ``supersedes``, are
       superseded by it (``"superseded"``; they keep existing with an end and a pointer);
    3. a near duplicate or a row naming the same entity is merged with it, keeping the richer
       text and both provenances (``"merged"``), recorded as a ``merge`` change;
    4. otherwise it is created (``"created"``).

    Any other ``change`` (an update of an existing id) is written as given. The time of the
    write is ``learning.created_at`` for a create, ``learning.updated_at`` otherwise.

    ``expected_version`` is the version of the row with ``learning.id`` that the caller read
    (``0``: none); the write of that row then raises :class:`ConflictError` if it changed
    meanwhile, and the caller re-reads and re-applies (see :func:`retry_conflicts`). Rows this
    function reads itself (merged into, superseded) are written with their own version, and a
    lost race on them is retried here.
    """
    policy = policy or WritePolicy()
    if (
        policy.embed
        and embedder is not None
        and learning.embedding is None
        and learning.search_text
    ):
        vector = (await aembed(embedder, [learning.search_text]))[0]
        learning = replace(
            learning, embedding=tuple(float(x) for x in vector), embedder=embedder.name
        )
    if change.action != "create":
        stored = await db.arun(
            PutLearning(learning=learning, change=change, expected_version=expected_version)
        )
        return WriteResult(learning=stored, action="updated")

    async def create() -> WriteResult:
        return await _create(
            db, learning, change, scope, policy, tuple(supersedes), expected_version
        )

    # Races on rows merged into or superseded are retried on a fresh read of the scope; a race
    # on the learning's own id is the caller's to resolve (it read that row).
    return await retry_conflicts(
        create, what=f"the rows curated with learning {learning.id!r}", pass_through=learning.id
    )


async def _create(
    db: Db,
    learning: Learning,
    change: Change,
    scope: LearningFilter,
    policy: WritePolicy,
    supersedes: tuple[str, ...],
    expected_version: int | None,
) -> WriteResult:
    """One try of the create path of :func:`write_learning` (on a fresh read of the scope)."""
    now = learning.created_at
    narrow = _narrow(scope, learning)
    if policy.dedupe_exact:
        same = await db.arun(
            ListLearnings(filter=replace(narrow, content_hash=learning.content_hash), limit=1)
        )
        if same:
            return WriteResult(learning=same[0], action="duplicate")

    key = conflict_key_of(learning, policy)
    retire: list[Learning] = []
    if supersedes:
        named: list[Learning] = await db.arun(GetLearnings(ids=tuple(supersedes), filter=narrow))
        retire.extend(named)
    if key is not None:
        # Keys live in the JSON content, which no op filters on: scan the (narrow) scope.
        for row in await db.arun(ListLearnings(filter=narrow, limit=None)):
            if row.id in {r.id for r in retire} or conflict_key_of(row, policy) != key:
                continue
            if _same_value(row, learning, policy):
                merged = merge_learnings(row, learning, now=now)
                stored = await db.arun(
                    PutLearning(
                        learning=merged,
                        change=_derived(change, "merge", f"same {key.split(chr(0))[1]!r} value"),
                        expected_version=row.version,
                    )
                )
                return WriteResult(learning=stored, action="merged")
            retire.append(row)
    retire = [r for r in retire if r.status == "active" and r.id != learning.id]
    if retire:
        provenance = dict(learning.provenance)
        provenance["supersedes"] = [r.id for r in retire]
        learning = replace(learning, provenance=provenance)
        ops: list[Any] = [
            PutLearning(learning=learning, change=change, expected_version=expected_version)
        ]
        for row in retire:
            reason = f"superseded by {learning.id}: {learning.search_text!r}"
            ops.append(
                PutLearning(
                    learning=supersede_learning(row, learning, now=now),
                    change=_derived(change, "supersede", reason),
                    expected_version=row.version,
                )
            )
        results = await db.abatch(ops)
        return WriteResult(
            learning=results[0], action="superseded", affected=tuple(r.id for r in retire)
        )

    found = await _find_merge(db, learning, narrow, policy, key)
    if found is not None:
        row, sim = found
        how = "same entity name" if sim is None else f"near duplicate (cosine {sim:.3f})"
        merged = merge_learnings(row, learning, now=now, similarity=sim)
        stored = await db.arun(
            PutLearning(
                learning=merged,
                change=_derived(change, "merge", f"{how} of new text"),
                expected_version=row.version,
            )
        )
        return WriteResult(learning=stored, action="merged", similarity=sim)

    stored = await db.arun(
        PutLearning(learning=learning, change=change, expected_version=expected_version)
    )
    return WriteResult(learning=stored, action="created")


def _derived(change: Change, action: str, reason: str) -> Change:
    """Make a change of ``action`` by the same actor in the same turn as ``change``."""
    because = f"{reason}; {change.reason}" if change.reason else reason
    return Change(action=action, actor=dict(change.actor), reason=because, turn_id=change.turn_id)
