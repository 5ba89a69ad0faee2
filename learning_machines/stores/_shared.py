"""Helpers the built-in stores share: provenance, scopes, writing, searching, rendering.

Pure functions where possible; the few that touch the backend take the store and run one op.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from .._tokens import truncate_to_tokens
from ..curation import WritePolicy, WriteResult, has_evidence, rerank, write_learning
from ..db import (
    PRIVATE_NAMESPACE,
    Change,
    Learning,
    LearningFilter,
    ScoredLearning,
    SearchLearnings,
    normalize_text,
    utcnow,
)
from ..exceptions import ConfigurationError, IsolationError

if TYPE_CHECKING:
    from ._base import BaseStore

__all__ = [
    "DIRECT_LOOKUP",
    "change_for",
    "describe_mode_writes",
    "fit_lines",
    "format_day",
    "kept_on_update",
    "parse_when",
    "provenance",
    "relevant",
    "require_user_for_private",
    "same_name",
    "save",
    "scope_filter",
    "search",
    "turn_time",
]


#: Write policy of rows found by their id, never by similarity (a user's profile, a session's
#: context): one row per owner, rewritten in place, so no embedding and no merging.
DIRECT_LOOKUP = WritePolicy(embed=False, dedupe_exact=False, merge_near=False, match_names=False)


def turn_time(context: Mapping[str, Any]) -> datetime:
    """Return the turn's ``now`` (UTC), or the current time."""
    now = context.get("now")
    if isinstance(now, datetime):
        return now if now.tzinfo else now.replace(tzinfo=UTC)
    return datetime.now(UTC)


def provenance(store: BaseStore, context: Mapping[str, Any]) -> dict[str, Any]:
    """Where a learning came from: user, session, turn, mode and store slot."""
    out = {
        "user_id": context.get("user_id"),
        "session_id": context.get("session_id"),
        "turn_id": context.get("turn_id"),
        "mode": str(context.get("mode") or store.mode.value),
        "store": store.resources.name,
    }
    for key in ("approved_by", "proposal_id", "screened"):
        if context.get(key):
            out[key] = context[key]
    return out


def kept_on_update(row: Learning | None) -> dict[str, Any]:
    """Fields a row keeps when it is rewritten in place.

    When it was first learned, and the signals curation ranks by (recalls, feedback and its
    helpful/harmful evidence); a new row (``row is None``) only gets its creation time.
    """
    if row is None:
        return {"created_at": utcnow()}
    return {
        "created_at": row.created_at,
        "recall_count": row.recall_count,
        "last_recalled_at": row.last_recalled_at,
        "feedback": row.feedback,
        "helpful": row.helpful,
        "harmful": row.harmful,
    }


def change_for(store: BaseStore, action: str, reason: str, context: Mapping[str, Any]) -> Change:
    """Build the history record of a write made by ``store`` in this turn.

    A write held for approval names who approved it, so the history does not read as if the
    user whose turn proposed it had written it alone.
    """
    return Change(
        action=action,
        actor={
            "store": store.resources.name,
            "mode": str(context.get("mode") or store.mode.value),
            "user_id": context.get("user_id"),
            **{k: context[k] for k in ("approved_by", "proposal_id") if context.get(k)},
        },
        reason=reason,
        turn_id=context.get("turn_id"),
    )


def scope_filter(
    namespace: str, learning_type: str, context: Mapping[str, Any], **extra: Any
) -> LearningFilter:
    """Rows that count as "the same place" as a write to ``namespace`` in this turn.

    Raises :class:`IsolationError` for a private write without a ``user_id``: a private row with
    no owner could never be read back, or worse, be read by everyone.
    """
    user_id = context.get("user_id")
    if namespace == PRIVATE_NAMESPACE and not user_id:
        raise IsolationError(
            "Writing to the private namespace 'user' needs the turn's user: pass user_id=... "
            "to run()/process() (or configure the store with a shared namespace)."
        )
    return LearningFilter(
        namespaces=(namespace,),
        reader_user_id=user_id,
        learning_types=(learning_type,),
        **extra,
    )


def require_user_for_private(store: BaseStore, context: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigurationError` when a private namespace is in play without a user."""
    namespaces = (store.config.namespace, *store.config.read_namespaces)
    if PRIVATE_NAMESPACE in namespaces and not context.get("user_id"):
        raise ConfigurationError(
            f"{type(store).__name__} reads or writes the private namespace 'user', which needs "
            "the turn's user: pass user_id=... to run()/recall()/process()."
        )


async def save(
    store: BaseStore,
    learning: Learning,
    *,
    action: str,
    reason: str,
    context: Mapping[str, Any],
    scope: LearningFilter,
    policy: WritePolicy | None = None,
    supersedes: Sequence[str] = (),
    expected_version: int | None = None,
) -> WriteResult:
    """Write ``learning`` through curation (:func:`write_learning`), with provenance.

    ``supersedes`` names learnings the new one replaces (they are kept, marked superseded).
    ``expected_version`` is the version of ``learning.id`` read before (``0``: none); a
    :class:`~learning_machines.exceptions.ConflictError` says another writer changed it since.
    """
    learning = replace(learning, provenance={**provenance(store, context), **learning.provenance})
    return await write_learning(
        db=store.db,
        embedder=store.embedder,
        learning=learning,
        change=change_for(store, action, reason, context),
        scope=scope,
        policy=policy,
        supersedes=supersedes,
        expected_version=expected_version,
    )


async def search(
    store: BaseStore,
    query: str,
    filter: LearningFilter,
    *,
    limit: int,
    vector: Sequence[float] | None = None,
    embed_query: bool = True,
) -> list[ScoredLearning]:
    """Hybrid search within ``filter`` (isolation applies inside the query).

    ``vector`` is the query's embedding when the caller has it (the turn's ``query_vector``);
    otherwise the query is embedded here unless ``embed_query`` is false.
    """
    if not query.strip() or limit <= 0:
        return []
    vec: tuple[float, ...] | None = tuple(float(x) for x in vector) if vector is not None else None
    if vec is None and embed_query:
        from ..embedders import aembed

        vec = tuple(float(x) for x in (await aembed(store.embedder, [query]))[0])
    evidence_weight = store.config.feedback_weight
    # With feedback, a learning that misled must be able to fall out of the top ``limit``:
    # rank twice as many candidates, then cut.
    found = await store.db.arun(
        SearchLearnings(
            filter=filter,
            query=query,
            vector=vec,
            embedder=store.embedder.name if vec is not None else None,
            limit=limit * 2 if evidence_weight > 0 else limit,
            method="hybrid" if vec is not None else "keyword",
        )
    )
    if not any(has_evidence(s.learning) for s in found):
        found, evidence_weight = found[:limit], 0.0  # no feedback yet: exactly as before
    weight = store.config.decay_weight
    if (weight <= 0 and evidence_weight <= 0) or len(found) < 2:
        return found[:limit]
    ranked = rerank(found, now=utcnow(), weight=max(weight, 0.0), evidence_weight=evidence_weight)
    return ranked[:limit]


def relevant(hits: Sequence[ScoredLearning], min_similarity: float) -> list[ScoredLearning]:
    """Drop hits whose meaning is far from the query (cosine below ``min_similarity``).

    A hybrid search always returns its top ``limit``, related or not; what goes into the
    prompt unasked should at least be about the message. Keyword-only hits (no vector score)
    are kept.
    """
    return [h for h in hits if h.vector_score is None or h.vector_score >= min_similarity]


def fit_lines(header: str, lines: Iterable[str], max_tokens: int) -> str:
    """``header`` then ``lines`` (most relevant first), cut to ``max_tokens`` at a line boundary.

    Returns ``""`` when there are no lines, so an empty store adds nothing to the prompt.
    """
    body = [line for line in lines if line]
    if not body:
        return ""
    return truncate_to_tokens("\n".join([header, *body]), max_tokens)


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%d %B %Y", "%d %b %Y", "%B %d %Y", "%b %d %Y")
_NO_YEAR_FORMATS = ("%B %d", "%b %d", "%d %B", "%d %b")


def _in_utc(parsed: datetime) -> datetime | None:
    """``parsed`` in UTC (naive means UTC), or ``None`` if UTC takes it past years 1-9999."""
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


def parse_when(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """Parse a date (ISO ``2024-01-15`` or ``Jan 15, 2024``; ``Jan 15`` takes ``now``'s year).

    Returns a datetime in UTC, or ``None`` when ``value`` is empty, not a date we can read, or a
    time that leaves the years 1-9999 once converted to UTC (``9999-12-31T23:59:59-23:59``),
    which could not be stored and read back. Never raises, whatever a model wrote.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace(",", " ")
    text = " ".join(text.split())
    try:
        return _in_utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    year = (now or datetime.now(UTC)).year
    for fmt in _NO_YEAR_FORMATS:
        try:
            parsed = datetime.strptime(f"{text} {year}", f"{fmt} %Y")
            return parsed.replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def format_day(value: datetime | date | None) -> str:
    """``2024-01-15`` (or ``""``)."""
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d")


def same_name(a: str, b: str) -> bool:
    """Whether two names are the same after normalisation (case, spacing, end punctuation)."""
    return normalize_text(a) == normalize_text(b)


def describe_mode_writes(mode: str) -> str:
    """One sentence on what the write tools do in ``mode`` (for guidance)."""
    if mode == "propose":
        return (
            "Writes are PROPOSALS: nothing is saved until the user confirms. After calling a "
            "write tool, tell the user what you proposed and ask them to confirm in their next "
            "message."
        )
    if mode == "hitl":
        return (
            "Writes are PROPOSALS that a human reviewer approves later; nothing is saved until "
            "then. Do not tell the user it is saved, and do not ask them to approve it."
        )
    return "Writes are saved at once."
