"""The curator: curation runs, history, archive and restore, forget, export and import.

A curation run walks every scope (learning type × namespace × private owner) and, in each:
merges near duplicates left over (or written around :func:`write_learning`), supersedes older
facts that share a conflict key with a newer one, archives learnings whose retention score fell
below their policy's threshold or that feedback showed to mislead (strong harmful evidence),
and prunes scopes over their cap by archiving the weakest. It also expires pending proposals
past their time. Nothing is deleted; every step is a history
entry that :meth:`Curator.arestore` can undo.

What changes in a scope is decided without I/O (``_plan.plan_scope``). Every write names the
version of the row it read: a row another writer changed meanwhile is never overwritten with a
stale copy; the scope is read and planned again instead.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from .._sync import run_sync
from ..db import (
    PRIVATE_NAMESPACE,
    Change,
    Db,
    GetLearnings,
    HistoryEntry,
    Learning,
    LearningFilter,
    ListHistory,
    ListLearnings,
    ListProposals,
    ListScopes,
    PurgeUser,
    PutLearning,
    PutProposal,
    ScopeCount,
    utcnow,
)
from ..db._records import ALL_STATUSES
from ..embedders import Embedder, aembed
from ..exceptions import ConflictError, ModelError, NotFoundError, ValidationError
from ._decay import CurationPolicy, check_policies, policy_for
from ._export import export_user, import_user, learning_from_dict
from ._forget import ForgetRequest, arun_forget_steps
from ._judge import (
    DEFAULT_JUDGE_BAND,
    JUDGE_SURE,
    MAX_JUDGED_PAIRS,
    DedupJudge,
    JudgeCost,
    band_pairs,
)
from ._plan import CURATOR_ACTOR, HARMFUL_EVIDENCE, plan_scope
from ._report import CurationAction, CurationReport
from ._write import retry_conflicts

__all__ = ["CURATION_ACTIONS", "CurationAction", "CurationReport", "Curator"]

logger = logging.getLogger("learning_machines")

#: History actions that :meth:`Curator.arestore` undoes by default.
CURATION_ACTIONS = frozenset({"merge", "supersede", "archive", "delete", "update", "import"})


def _scope_filter(scope: ScopeCount) -> LearningFilter:
    return LearningFilter(
        namespaces=(scope.namespace,),
        reader_user_id=scope.user_id if scope.namespace == PRIVATE_NAMESPACE else None,
        learning_types=(scope.learning_type,),
    )


def _scopes_named(entries: Sequence[HistoryEntry]) -> list[tuple[str, str | None]]:
    """``(namespace, private owner)`` pairs the snapshots of ``entries`` name, newest first."""
    scopes: dict[tuple[str, str | None], None] = {}
    for entry in reversed(entries):
        for snap in (entry.new, entry.old):
            if snap is not None:
                namespace = str(snap.get("namespace", PRIVATE_NAMESPACE))
                owner = snap.get("user_id") if namespace == PRIVATE_NAMESPACE else None
                scopes.setdefault((namespace, None if owner is None else str(owner)), None)
    return list(scopes)


def _check_same_owner(
    restored: Learning, row: Learning | None, entries: Sequence[HistoryEntry]
) -> None:
    """A restore never moves a row to another namespace or (private) owner.

    History can hold entries written around the curator (an import, a hand-made entry); a
    snapshot naming another owner must not hand the row to them. A deleted row's scope is the
    one its whole history agrees on.
    """
    target = (
        restored.namespace,
        restored.user_id if restored.namespace == PRIVATE_NAMESPACE else None,
    )
    if row is not None:
        scopes = [(row.namespace, row.user_id if row.namespace == PRIVATE_NAMESPACE else None)]
    else:
        scopes = _scopes_named(entries)
    if scopes != [target]:
        where = " or ".join(f"{ns!r} (owner {owner!r})" for ns, owner in scopes)
        raise ValidationError(
            f"History entry of learning {restored.id} names namespace {target[0]!r} (owner "
            f"{target[1]!r}), but the learning is in {where}; a restore never moves a row to "
            "another owner. Pick another entry, or restore by hand."
        )


class Curator:
    """Curation of one backend: runs, history, restore, forget, export and import.

    Example::

        curator = Curator(db=SqliteDb("learnings.db"), embedder=HashEmbedder())
        report = curator.curate()
        print(report.summary())

    Every method is async (``a``-prefixed) with a sync twin that wraps it.
    """

    def __init__(
        self,
        *,
        db: Db,
        embedder: Embedder | None = None,
        policies: Mapping[str, CurationPolicy] | None = None,
        judge: DedupJudge | None = None,
        judge_band: float = DEFAULT_JUDGE_BAND,
    ) -> None:
        """``policies`` override :data:`DEFAULT_POLICIES` per learning type (not store slot).

        ``judge`` (e.g. :class:`~learning_machines.curation.ModelJudge`) decides the near
        duplicates similarity cannot: pairs with a cosine from ``judge_band`` up to the policy's
        threshold, and guarded pairs above it, all asked in one call per run.
        With a judge, only pairs at or above ``JUDGE_SURE`` (0.97) merge without asking.
        """
        self.db = db
        self.embedder = embedder
        self.policies = dict(policies or {})
        self.judge = judge
        self.judge_band = judge_band
        check_policies(self.policies)

    def policy(self, learning_type: str) -> CurationPolicy:
        """Return the policy used for ``learning_type``."""
        return policy_for(learning_type, self.policies)

    # --- curation runs ---------------------------------------------------------------------------

    async def acurate(
        self,
        *,
        namespaces: Sequence[str] | None = None,
        user_id: str | None = None,
        learning_types: Sequence[str] | None = None,
        now: datetime | None = None,
        dry_run: bool = False,
        on_progress: Callable[[int, int | None], None] | None = None,
    ) -> CurationReport:
        """Run curation over every scope (or those selected) and report what it did.

        ``user_id`` limits the run to that user's private scopes. ``now`` is the time decay is
        measured at (default: the current time). ``dry_run`` computes the report and writes
        nothing. ``on_progress(scopes_done, scopes)`` is called after each scope.
        """
        now = now or utcnow()
        scopes: list[ScopeCount] = await self.db.arun(
            ListScopes(
                learning_types=tuple(learning_types) if learning_types is not None else None,
                namespaces=tuple(namespaces) if namespaces is not None else None,
                user_id=user_id,
            )
        )
        if user_id is not None:
            scopes = [s for s in scopes if s.user_id == user_id]
        judged, cost = await self._judge(scopes)
        report = CurationReport(dry_run=dry_run, scopes=len(scopes), judge=cost)
        examined = 0
        for done, scope in enumerate(scopes, start=1):
            examined += await self._curate_scope(
                scope, now=now, dry_run=dry_run, report=report, judged=judged
            )
            if on_progress is not None:
                on_progress(done, len(scopes))
        await self._expire_proposals(user_id=user_id, now=now, dry_run=dry_run, report=report)
        return dataclasses.replace(report, examined=examined)

    async def _judge(
        self, scopes: Sequence[ScopeCount]
    ) -> tuple[dict[tuple[str, str], bool], JudgeCost | None]:
        """Ask the judge, once, about the uncertain pairs of every scope; its verdicts."""
        if self.judge is None:
            return {}, None
        pairs = []
        for scope in scopes:
            rows = await self.db.arun(
                ListLearnings(
                    filter=_scope_filter(scope), limit=None, order_by="created_at", ascending=True
                )
            )
            threshold = self.policy(scope.learning_type).near_duplicate_threshold
            pairs += band_pairs(rows, low=self.judge_band, high=max(threshold, JUDGE_SURE))
        pairs.sort(key=lambda p: -p.similarity)
        asked = pairs[:MAX_JUDGED_PAIRS]
        try:
            verdict = await self.judge.ajudge(asked)
        except Exception as exc:  # any failure of a model call: nothing is written, say why
            raise ModelError(
                f"The near-duplicate judge {self.judge.name} failed on {len(asked)} pairs "
                f"({type(exc).__name__}: {exc}); nothing was curated. Fix the model (API key, "
                "SDK) or curate without a judge."
            ) from exc
        if len(verdict.same) != len(asked):
            raise ModelError(
                f"The near-duplicate judge {self.judge.name} answered {len(verdict.same)} "
                f"verdicts for {len(asked)} pairs; nothing was curated."
            )
        verdicts = {
            (p.keep.id, p.other.id): yes for p, yes in zip(asked, verdict.same, strict=True)
        }
        same = [pair for pair, yes in verdicts.items() if yes]
        if verdict.calls:
            logger.info(
                "near-duplicate judge %s: %d/%d pairs the same in %d call(s)",
                self.judge.name, len(same), len(asked), verdict.calls,
            )  # fmt: skip
        cost = JudgeCost(
            judge=self.judge.name,
            calls=verdict.calls,
            pairs=len(asked),
            same=len(same),
            skipped=len(pairs) - len(asked),
            input_tokens=verdict.input_tokens,
            output_tokens=verdict.output_tokens,
        )
        return verdicts, cost

    def curate(self, **options: Any) -> CurationReport:
        """Sync :meth:`acurate`."""
        return run_sync(self.acurate(**options))

    async def _curate_scope(
        self,
        scope: ScopeCount,
        *,
        now: datetime,
        dry_run: bool,
        report: CurationReport,
        judged: Mapping[tuple[str, str], bool] | None = None,
    ) -> int:
        """Curate one scope; when a row changed between its read and the write, start again.

        Every write names the version it read, so a concurrent change (a worker's update, a
        person's edit) is never overwritten with the stale copy: the scope's writes roll back
        and the scope is read and planned afresh.
        """
        policy = self.policy(scope.learning_type)

        async def attempt() -> int:
            rows: list[Learning] = await self.db.arun(
                ListLearnings(
                    filter=_scope_filter(scope), limit=None, order_by="created_at", ascending=True
                )
            )
            plan = plan_scope(
                rows, learning_type=scope.learning_type, policy=policy, now=now, judged=judged
            )
            if plan.ops and not dry_run:
                await self.db.abatch(plan.ops)
            # Reported once written: a try that lost a race to another writer reports nothing.
            report.merged.extend(plan.merged)
            report.superseded.extend(plan.superseded)
            report.archived.extend(plan.archived)
            return len(rows)

        what = f"the {scope.learning_type} learnings of namespace {scope.namespace!r}"
        return await retry_conflicts(attempt, what=what)

    async def _expire_proposals(
        self, *, user_id: str | None, now: datetime, dry_run: bool, report: CurationReport
    ) -> None:
        pending = await self.db.arun(
            ListProposals(statuses=("pending",), user_id=user_id, limit=None)
        )
        for p in pending:
            ttl = self.policy(p.learning_type).proposal_ttl_days
            deadline = p.expires_at
            if deadline is None and ttl is not None:
                deadline = p.created_at + timedelta(days=ttl)
            if deadline is None or deadline > now:
                continue
            report.expired.append(
                CurationAction(
                    action="expire", id=p.id, reason=f"not decided by {deadline.isoformat()}",
                    learning_type=p.learning_type,
                )
            )  # fmt: skip
            if dry_run:
                continue
            expired = dataclasses.replace(p, status="expired", decided_by="curator", decided_at=now)
            try:
                await self.db.arun(PutProposal(proposal=expired, expected_status="pending"))
            except ConflictError:
                report.expired.pop()  # decided meanwhile by someone else: theirs stands

    # --- history, archive, restore -------------------------------------------------------------

    async def ahistory(self, learning_id: str) -> list[HistoryEntry]:
        """Every recorded change of a learning, oldest first (``NotFoundError`` if none)."""
        entries: list[HistoryEntry] = await self.db.arun(ListHistory(learning_id=learning_id))
        if not entries:
            raise NotFoundError(
                f"No learning {learning_id!r} has any history here; check the id (see "
                "`learning-machines history`) and the --db."
            )
        return entries

    def history(self, learning_id: str) -> list[HistoryEntry]:
        """Sync :meth:`ahistory`."""
        return run_sync(self.ahistory(learning_id))

    async def _current(self, learning_id: str) -> tuple[Learning | None, list[HistoryEntry]]:
        """Return the stored row (``None`` if deleted) and its history.

        The row is looked up in every scope its history names, newest first, so one entry
        naming another owner cannot hide the real row.
        """
        entries = await self.ahistory(learning_id)
        for namespace, owner in _scopes_named(entries):
            rows: list[Learning] = await self.db.arun(
                GetLearnings(
                    ids=(learning_id,),
                    filter=LearningFilter(
                        namespaces=(namespace,), reader_user_id=owner, statuses=ALL_STATUSES
                    ),
                )
            )
            if rows:
                return rows[0], entries
        return None, entries

    async def aarchive(
        self, learning_id: str, reason: str = "", actor: Mapping[str, Any] | None = None
    ) -> Learning:
        """Archive a learning now: it stops being recalled and stays restorable."""

        async def attempt() -> Learning:
            row, _ = await self._current(learning_id)
            if row is None:
                raise NotFoundError(f"Learning {learning_id!r} was deleted; restore it first.")
            archived = dataclasses.replace(row, status="archived", updated_at=utcnow())
            change = Change(action="archive", actor=dict(actor or CURATOR_ACTOR), reason=reason)
            stored: Learning = await self.db.arun(
                PutLearning(learning=archived, change=change, expected_version=row.version)
            )
            return stored

        return await retry_conflicts(attempt, what=f"learning {learning_id!r}")

    def archive(
        self, learning_id: str, reason: str = "", actor: Mapping[str, Any] | None = None
    ) -> Learning:
        """Sync :meth:`aarchive`."""
        return run_sync(self.aarchive(learning_id, reason, actor))

    async def arestore(
        self,
        learning_id: str,
        *,
        to_entry: str | None = None,
        actor: Mapping[str, Any] | None = None,
    ) -> Learning:
        """Undo a step: bring the learning back to the row it had before a history entry.

        Without ``to_entry``, the last curation step (merge, supersede, archive, delete, update,
        import) is undone; with it, the row before that entry comes back. The restore is itself
        a ``restore`` history entry, so it can be undone too. Undoing an archive made because
        feedback showed the learning misleads also clears its helpful/harmful evidence: a person
        judged it worth keeping, so it ranks and is curated afresh (the old counts stay in the
        history). A restored row is re-embedded when
        its text differs from the stored one, with this curator's embedder when it is the one the
        row was embedded by (otherwise the row comes back without a vector; re-embed it).
        """
        return await retry_conflicts(
            lambda: self._restore_once(learning_id, to_entry=to_entry, actor=actor),
            what=f"learning {learning_id!r}",
        )

    async def _restore_once(
        self, learning_id: str, *, to_entry: str | None, actor: Mapping[str, Any] | None
    ) -> Learning:
        """One try of :meth:`arestore`, on a fresh read; written only over the row it read."""
        row, entries = await self._current(learning_id)
        if to_entry is not None:
            target = next((e for e in entries if e.id == to_entry), None)
            if target is None:
                raise NotFoundError(
                    f"Learning {learning_id!r} has no history entry {to_entry!r}; list them "
                    f"with `learning-machines history {learning_id}`."
                )
        else:
            target = next((e for e in reversed(entries) if e.action in CURATION_ACTIONS), None)
            if target is None:
                raise ValidationError(
                    f"Learning {learning_id!r} has no curation step to undo (its history: "
                    f"{', '.join(e.action for e in entries)})."
                )
        if target.old is None:
            raise ValidationError(
                f"History entry {target.id} ({target.action}) created the learning; there is no "
                "earlier row to restore. Archive it instead."
            )
        restored = learning_from_dict(target.old)
        _check_same_owner(restored, row, entries)
        if row is not None and row.search_text == restored.search_text:
            restored = dataclasses.replace(restored, embedding=row.embedding, embedder=row.embedder)
        elif (
            self.embedder is not None
            and restored.search_text
            and restored.embedder in (None, self.embedder.name)
        ):
            vector = (await aembed(self.embedder, [restored.search_text]))[0]
            restored = dataclasses.replace(
                restored, embedding=tuple(float(x) for x in vector), embedder=self.embedder.name
            )
        else:
            restored = dataclasses.replace(restored, embedding=None, embedder=None)
        restored = dataclasses.replace(restored, updated_at=utcnow())
        reason = f"undo {target.action} of {target.created_at.isoformat()} ({target.id})"
        if target.actor.get("rule") == HARMFUL_EVIDENCE:
            restored = dataclasses.replace(
                restored,
                helpful=0.0,
                harmful=0.0,
                feedback=restored.feedback - (restored.helpful - restored.harmful),
            )
            reason += "; its feedback evidence was cleared"
        change = Change(action="restore", actor=dict(actor or CURATOR_ACTOR), reason=reason)
        stored: Learning = await self.db.arun(
            PutLearning(
                learning=restored,
                change=change,
                expected_version=row.version if row is not None else 0,
            )
        )
        return stored

    def restore(
        self,
        learning_id: str,
        *,
        to_entry: str | None = None,
        actor: Mapping[str, Any] | None = None,
    ) -> Learning:
        """Sync :meth:`arestore`."""
        return run_sync(self.arestore(learning_id, to_entry=to_entry, actor=actor))

    # --- forget, export, import ------------------------------------------------------------------

    async def aforget(self, user_id: str, *, keep_shared: bool = True) -> dict[str, int]:
        """Delete everything private to ``user_id``; returns rows deleted or unlinked per table.

        Their private learnings (with embeddings) and the history of those, their messages,
        proposals and pending work go — decision records and feedback signals included.
        Shared-namespace learnings they authored stay but lose the link to them, unless
        ``keep_shared=False`` deletes those too; shared lessons lose their example turns, and
        self-improvement's proposals and approved changes stop citing their turns. Those forget
        steps (:func:`~learning_machines.curation.register_forget_step`) run before the purge;
        each reports its count under its name (``lessons_scrubbed``, ``improvements_uncited``)
        when not zero.
        """
        if not user_id:
            raise ValidationError("forget() needs a user_id.")
        # Shared rows (lessons, improvement evidence) drop this user's traces first; the
        # steps are registered by the layers that own those rows (see ``_forget``).
        scrubbed = await arun_forget_steps(
            ForgetRequest(
                db=self.db, user_id=user_id, embedder=self.embedder, keep_shared=keep_shared
            )
        )
        counts: dict[str, int] = await self.db.arun(
            PurgeUser(user_id=user_id, delete_shared=not keep_shared)
        )
        counts.update(scrubbed)
        return counts

    def forget(self, user_id: str, *, keep_shared: bool = True) -> dict[str, int]:
        """Sync :meth:`aforget`."""
        return run_sync(self.aforget(user_id, keep_shared=keep_shared))

    async def aexport(self, user_id: str) -> dict[str, Any]:
        """Everything private to ``user_id`` as a JSON-ready dict (embeddings as float lists).

        Holds ``learnings`` (every status), their ``history``, ``messages``, ``proposals`` and
        ``pending_work``; :meth:`aimport` restores it.
        """
        return await export_user(self.db, user_id)

    def export(self, user_id: str) -> dict[str, Any]:
        """Sync :meth:`aexport`."""
        return run_sync(self.aexport(user_id))

    async def aimport(self, data: Mapping[str, Any]) -> dict[str, int]:
        """Restore an export; idempotent. Returns rows written per kind."""
        return await import_user(self.db, data)

    def import_(self, data: Mapping[str, Any]) -> dict[str, int]:
        """Sync :meth:`aimport` (``import`` is a Python keyword)."""
        return run_sync(self.aimport(data))
