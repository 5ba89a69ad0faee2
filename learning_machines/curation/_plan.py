"""What a curation run changes in one scope, decided without I/O.

:func:`plan_scope` takes the scope's rows as read and returns the writes (each naming the
version it read, so a row changed meanwhile makes the whole scope's batch fail and be planned
again) and the actions to report. The curator reads, plans, writes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from ..db import Change, Learning, PutLearning, normalize_text
from ._decay import CurationPolicy, retention_score
from ._evidence import helpfulness, strongly_harmful
from ._report import CurationAction
from ._similar import distinguishing
from ._write import merge_learnings, names_of, supersede_learning

__all__ = ["CURATOR_ACTOR", "HARMFUL_EVIDENCE", "ScopePlan", "plan_merges", "plan_scope"]

#: The actor of the curator's own writes.
CURATOR_ACTOR = {"curator": "learning_machines"}
#: ``actor["rule"]`` of an archive made because feedback showed the learning misleads.
HARMFUL_EVIDENCE = "harmful_evidence"


@dataclass
class ScopePlan:
    """The writes of one scope, and what to report of them."""

    ops: list[PutLearning] = field(default_factory=list)
    """Every write, in order, each with the version it expects."""
    merged: list[CurationAction] = field(default_factory=list)
    """Learnings folded into another."""
    superseded: list[CurationAction] = field(default_factory=list)
    """Older facts replaced by a newer one with the same conflict key."""
    archived: list[CurationAction] = field(default_factory=list)
    """Learnings archived (low retention, harmful evidence, over the cap)."""


def plan_scope(
    rows: Sequence[Learning],
    *,
    learning_type: str,
    policy: CurationPolicy,
    now: datetime,
    judged: Mapping[tuple[str, str], bool] | None = None,
) -> ScopePlan:
    """Plan the merges, supersessions and archives of one scope's ``rows`` (oldest first)."""
    plan = ScopePlan()
    gone: set[str] = set()
    current = {r.id: r for r in rows}
    versions = {r.id: r.version for r in rows}

    def put(learning: Learning, change: Change) -> None:
        # The version read, one more for each earlier write of the row in this batch.
        plan.ops.append(
            PutLearning(learning=learning, change=change, expected_version=versions[learning.id])
        )
        versions[learning.id] += 1

    # Verbatim rows (episodes) are what was said: never folded into each other.
    dedupe = policy.deduplicates(learning_type)
    merges = plan_merges(rows, policy, judged) if dedupe else []
    for keep, absorbed, reason in merges:
        keep = current[keep.id]
        merged = merge_learnings(keep, absorbed, now=now)
        current[keep.id] = merged
        retired = dataclasses.replace(
            absorbed, status="superseded", superseded_by=keep.id, updated_at=now
        )
        gone.add(absorbed.id)
        change = Change(action="merge", actor=CURATOR_ACTOR, reason=f"{reason} of {keep.id}")
        put(merged, change)
        put(retired, change)
        plan.merged.append(
            CurationAction(
                action="merge", id=absorbed.id, into=keep.id, reason=reason,
                learning_type=learning_type,
            )
        )  # fmt: skip

    by_key: dict[str, list[Learning]] = {}
    for row in current.values() if dedupe else ():
        key = _key(row)
        if key is not None and row.id not in gone:
            by_key.setdefault(key, []).append(row)
    for same in by_key.values():
        if len(same) < 2:
            continue
        same.sort(key=lambda r: (r.valid_from or r.created_at, r.created_at, r.id))
        newest = same[-1]
        for old in same[:-1]:
            gone.add(old.id)
            reason = f"same conflict key as newer {newest.id}: {newest.search_text!r}"
            put(
                supersede_learning(old, newest, now=now),
                Change(action="supersede", actor=CURATOR_ACTOR, reason=reason),
            )
            plan.superseded.append(
                CurationAction(
                    action="supersede", id=old.id, into=newest.id, reason=reason,
                    learning_type=learning_type,
                )
            )  # fmt: skip

    alive = [r for r in current.values() if r.id not in gone]
    scored = sorted(
        ((retention_score(r, now=now, policy=policy), r) for r in alive),
        key=lambda t: (t[0], t[1].created_at, t[1].id),
    )
    min_age = timedelta(days=policy.min_age_days)
    archive: list[tuple[Learning, str]] = []
    if policy.archive_below is not None:
        for score, r in scored:
            if score < policy.archive_below and now - r.created_at >= min_age:
                archive.append((r, f"retention {score:.3f} below {policy.archive_below}"))
    harmful: set[str] = set()
    if policy.harmful_min_evidence is not None:
        chosen = {r.id for r, _ in archive}
        for _, r in scored:
            if r.id not in chosen and strongly_harmful(
                r, min_evidence=policy.harmful_min_evidence, below=policy.harmful_below
            ):
                harmful.add(r.id)
                archive.append(
                    (
                        r,
                        f"feedback showed it misleads: {r.harmful:g} harmful and "
                        f"{r.helpful:g} helpful outcomes (helpfulness "
                        f"{helpfulness(r):.2f} < {policy.harmful_below})",
                    )
                )
    if policy.max_per_scope is not None:
        chosen = {r.id for r, _ in archive}
        over = len(alive) - len(chosen) - policy.max_per_scope
        for score, r in scored:
            if over <= 0:
                break
            if r.id not in chosen:
                archive.append(
                    (r, f"scope over its cap of {policy.max_per_scope}; retention {score:.3f}")
                )
                over -= 1
    for r, reason in archive:
        actor = {**CURATOR_ACTOR, "rule": HARMFUL_EVIDENCE} if r.id in harmful else CURATOR_ACTOR
        put(
            dataclasses.replace(r, status="archived", updated_at=now),
            Change(action="archive", actor=actor, reason=reason),
        )
        plan.archived.append(
            CurationAction(action="archive", id=r.id, reason=reason, learning_type=learning_type)
        )
    return plan


def _key(learning: Learning) -> str | None:
    raw = learning.content.get("conflict_key")
    if raw is None or raw == "":
        return None
    return f"{learning.entity_id or ''}\x00{normalize_text(str(raw))}"


def plan_merges(
    rows: Sequence[Learning],
    policy: CurationPolicy,
    judged: Mapping[tuple[str, str], bool] | None = None,
) -> list[tuple[Learning, Learning, str]]:
    """Pairs ``(keep, absorbed, reason)``: duplicates left in one scope, oldest row kept.

    Pure: exact duplicates, entities sharing a name, near duplicates (cosine at or above the
    policy's threshold, without a lexical guard, conflict keys compatible). A pair
    ``(older id, newer id)`` in ``judged`` is merged exactly when the judge said it is the same.
    """
    judged = judged or {}
    kept: list[Learning] = []
    vectors: list[np.ndarray[Any, np.dtype[np.float64]] | None] = []
    plan: list[tuple[Learning, Learning, str]] = []
    for row in rows:
        vec = None if row.embedding is None else np.asarray(row.embedding, dtype=np.float64)
        target: tuple[int, str] | None = None
        for i, other in enumerate(kept):
            if other.content_hash == row.content_hash:
                target = (i, "exact duplicate")
            elif names_of(other) & names_of(row) and row.learning_type == "entity":
                target = (i, "same entity name")
            else:
                ov = vectors[i]
                if vec is None or ov is None or other.embedder != row.embedder:
                    continue
                k1, k2 = _key(other), _key(row)
                if k1 is not None and k2 is not None and k1 != k2:
                    continue
                norm = float(np.linalg.norm(vec) * np.linalg.norm(ov))
                sim = float(vec @ ov) / norm if norm else 0.0
                verdict = judged.get((other.id, row.id))
                if verdict is not None:
                    if not verdict:
                        continue
                    target = (i, f"judged the same fact (cosine {sim:.3f})")
                elif sim < policy.near_duplicate_threshold or distinguishing(
                    other.search_text, row.search_text
                ):
                    continue
                else:
                    target = (i, f"near duplicate (cosine {sim:.3f})")
            break
        if target is None:
            kept.append(row)
            vectors.append(vec)
            continue
        i, reason = target
        plan.append((kept[i], row, reason))
    return plan
