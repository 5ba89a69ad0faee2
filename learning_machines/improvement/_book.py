"""``machine.improvements``: review proposals, approve or reject them, roll back, measure.

Rules enforced here, in code:

- Only a person approves, by name (``by=``), and never the agent: no tool of any turn reaches
  this book.
- A user whose turns are a proposal's evidence cannot approve it alone: someone else must.
- Only a proposal that passed the screen and the gate (``pending``) can be approved; when the
  instructions changed since it was gated, it is replayed again against the current version
  first, and approved only if it still passes.
- A rejection is remembered: reflection never proposes the same change again (its normalised
  fingerprint, however it is worded).
- Each approval or rollback moves the scope's active version by a compare-and-set, in one
  transaction with its history entry, so two at once never lose one.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, Literal

from .._ids import check_id, check_optional_id, same_identity
from .._sync import sync_twin
from ..db import LocateLearnings, new_id, utcnow
from ..exceptions import ConflictError, NotFoundError, PermissionDenied, ValidationError
from ..stores._decision_model import decision_id
from ._engine import ImprovementUsage, ReflectionReport, SelfImprovement
from ._model import (
    ActiveInstructions,
    ImprovementProposal,
    InstructionChange,
    InstructionVersion,
    ProposalStatus,
    Rule,
    Scope,
    apply_change,
    version_id,
)
from ._traces import Trace, atraces

__all__ = ["EffectReport", "ImprovementBook", "OutcomeStats"]

_STATUSES = ("pending", "failed_gate", "blocked", "approved", "rejected", "withdrawn")
_RETRIES = 3


@dataclass(frozen=True, kw_only=True)
class OutcomeStats:
    """How the turns that ran with one version turned out."""

    version: str
    turns: int
    rated: int
    """Turns with a clear outcome (good or bad)."""
    bad: int
    mean_score: float | None
    """Mean outcome of rated turns (``None`` when none was rated)."""

    @property
    def failure_rate(self) -> float | None:
        """Share of rated turns that went wrong (``None`` when none was rated)."""
        return None if self.rated == 0 else self.bad / self.rated


@dataclass(frozen=True, kw_only=True)
class EffectReport:
    """Outcomes of the turns before and after a version became active."""

    version: str
    before: OutcomeStats
    """The turns that ran with the version active before it."""
    after: OutcomeStats
    """The turns that ran with it."""
    activated_at: str
    """When it last became active."""


def _stats(version: str, traces: list[Trace]) -> OutcomeStats:
    rated = [t for t in traces if t.verdict in ("good", "bad")]
    scores = [t.record.outcome.score for t in rated if t.record.outcome is not None]
    return OutcomeStats(
        version=version,
        turns=len(traces),
        rated=len(rated),
        bad=sum(1 for t in rated if t.verdict == "bad"),
        mean_score=None if not scores else round(sum(scores) / len(scores), 3),
    )


class ImprovementBook:
    """Proposals, versions and their history for one machine (see the module docstring)."""

    def __init__(self, engine: SelfImprovement) -> None:
        self._engine = engine
        self._store = engine.store

    @property
    def usage(self) -> ImprovementUsage:
        """Model calls reflection and the gate made in this process."""
        return self._engine.usage

    def _scope(self, agent_id: str | None, team_id: str | None) -> Scope:
        return self._engine.scope(
            check_optional_id(agent_id, name="agent_id"), check_optional_id(team_id, name="team_id")
        )

    # --- reading --------------------------------------------------------------------------------

    def _scope_or_all(self, agent_id: str | None, team_id: str | None) -> Scope | None:
        return None if agent_id is None and team_id is None else self._scope(agent_id, team_id)

    async def alist(
        self,
        *,
        agent_id: str | None = None,
        team_id: str | None = None,
        status: ProposalStatus | Literal["all"] | None = "pending",
    ) -> builtins.list[ImprovementProposal]:
        """Proposals, newest first: every agent's, or ``agent_id``'s (and ``team_id``'s).

        ``status``: ``"pending"`` (offered for approval, the default), ``"failed_gate"``,
        ``"blocked"``, ``"approved"``, ``"rejected"``, ``"withdrawn"``, or ``"all"``.
        """
        if status not in (None, "all", *_STATUSES):
            raise ValidationError(f"status must be one of {', '.join(_STATUSES)} or 'all'")
        found = await self._store.aproposals(self._scope_or_all(agent_id, team_id))
        if status not in (None, "all"):
            found = [p for p in found if p.status == status]
        return sorted(found, key=lambda p: p.created_at, reverse=True)

    async def aget(self, proposal_id: str) -> ImprovementProposal:
        """One proposal (:class:`NotFoundError` when there is none)."""
        return await self._store.aproposal(check_id(proposal_id, name="proposal_id"))

    async def aevidence(self, proposal_id: str) -> builtins.list[Trace]:
        """The turns a proposal rests on, read from their users' decision logs (for a reviewer).

        A turn whose user was forgotten is gone from the evidence, and from here.
        """
        proposal = await self.aget(proposal_id)
        ids = [e.turn_id for e in proposal.evidence]
        wanted = set(ids)
        traces = await atraces(
            self._engine.db,
            proposal.scope,
            keep=lambda t: t.turn_id in wanted,
            exact_team=self._engine.config.per_team,
        )
        by_id = {t.turn_id: t for t in traces}
        return [by_id[i] for i in ids if i in by_id]

    async def ainstructions(
        self, *, agent_id: str | None = None, team_id: str | None = None, base: str | None = None
    ) -> ActiveInstructions:
        """The active instructions of an agent: its base text plus the approved rules.

        ``base``: the agent's own instructions, when the caller has them (else the ones the
        agent registered).
        """
        return await self._engine.aactive(self._scope(agent_id, team_id), base=base)

    async def aversions(
        self, *, agent_id: str | None = None, team_id: str | None = None
    ) -> builtins.list[InstructionVersion]:
        """Every version approvals made (every agent's, or ``agent_id``'s), oldest first."""
        return await self._store.aversions(self._scope_or_all(agent_id, team_id))

    async def ahistory(
        self, *, agent_id: str | None = None, team_id: str | None = None
    ) -> builtins.list[InstructionChange]:
        """Every approval and rollback (every agent's, or ``agent_id``'s), oldest first.

        Each says from which version to which, by whom, the change and its evidence.
        """
        return await self._store.achanges(self._scope_or_all(agent_id, team_id))

    # --- deciding -------------------------------------------------------------------------------

    async def _owners(self, proposal: ImprovementProposal) -> set[str]:
        ids = tuple(decision_id(e.turn_id) for e in proposal.evidence)
        found = await self._engine.db.arun(LocateLearnings(ids=ids)) if ids else []
        return {loc.user_id for loc in found if loc.user_id}

    async def aapprove(
        self, proposal_id: str, *, by: str, note: str | None = None
    ) -> ImprovementProposal:
        """Approve a proposal: the agent's instructions get a new version at once.

        Raises :class:`PermissionDenied` when ``by`` is a user whose turns are its evidence,
        and :class:`ValidationError` when it is not ``pending`` (or no longer passes the gate
        against the current version: it is then kept as ``failed_gate``).
        """
        by = check_id(by, name="by")
        for _ in range(_RETRIES):
            try:
                return await self._approve_once(proposal_id, by=by, note=note)
            except ConflictError:
                continue  # another approval, rollback or reviewer moved first: read again
        raise ConflictError(
            f"the instructions kept changing while approving {proposal_id}; try again"
        )

    async def _approve_once(
        self, proposal_id: str, *, by: str, note: str | None
    ) -> ImprovementProposal:
        proposal = await self.aget(proposal_id)
        if proposal.status != "pending":
            raise ValidationError(_not_pending(proposal))
        owners = await self._owners(proposal)
        if any(same_identity(by, owner) for owner in owners):
            raise PermissionDenied(
                f"{by}'s own turns are evidence for proposal {proposal.id}: they cannot "
                "approve it alone; another reviewer must (learning-machines improvements "
                f"approve {proposal.id} --by REVIEWER)"
            )
        head = await self._store.ahead(proposal.scope)
        if head.version != proposal.base_version:
            proposal = await self._regate(proposal, head.rules, head.version)
        rules = apply_change(head.rules, proposal.change, limits=self._engine.limits)
        now = utcnow().isoformat()
        change = InstructionChange(
            id=new_id(),
            agent_id=proposal.agent_id,
            team_id=proposal.team_id,
            action="approve",
            from_version=head.version,
            to_version=version_id(proposal.scope, rules),
            by=by,
            at=now,
            proposal_id=proposal.id,
            summary=proposal.summary,
            evidence=proposal.evidence,
            note=note,
        )
        known = await self._store.aversion(change.to_version) is not None
        ops, version = self._store.switch_ops(head, rules, change=change, known=known)
        patch: dict[str, Any] = {
            "status": "approved",
            "decided_by": by,
            "decided_at": now,
            "decision_note": note,
            "version": version.id,
        }
        ops.append(self._store.decide_op(proposal, patch, by=by, reason="approved"))
        await self._engine.db.abatch(ops)  # ConflictError: someone moved first (retried)
        return proposal.model_copy(update=patch)

    async def _regate(
        self, proposal: ImprovementProposal, rules: tuple[Rule, ...], version: str
    ) -> ImprovementProposal:
        """Replay a proposal against the version now active; keep it only if it still passes."""
        engine = self._engine
        try:
            after = apply_change(rules, proposal.change, limits=engine.limits)
        except ValidationError as exc:
            raise ValidationError(
                f"proposal {proposal.id} no longer applies to the current instructions "
                f"({version}): {exc}; run reflection again"
            ) from exc
        gate = await engine.agate_change(
            scope=proposal.scope,
            profile=await self._store.aprofile(proposal.agent_id),
            before=rules,
            after=after,
            version=version,
            targets=await self.aevidence(proposal.id),
            text=proposal.rule_text or proposal.target_text or "",
            words=frozenset(proposal.words),
        )
        patch: dict[str, Any] = {"gate": gate.model_dump(mode="json"), "base_version": version}
        if not gate.passed:
            patch["status"] = "failed_gate"
        await self._engine.db.arun(
            self._store.decide_op(proposal, patch, by="gate", reason="gated again")
        )
        if not gate.passed:
            raise ValidationError(
                f"the instructions changed since proposal {proposal.id} was gated; replayed "
                f"against {version} it failed the gate ({gate.reason}); it is kept as failed_gate"
            )
        return proposal.model_copy(update={"gate": gate, "base_version": version})

    async def areject(
        self, proposal_id: str, *, by: str, reason: str | None = None
    ) -> ImprovementProposal:
        """Reject a proposal (kept, and never proposed again however it is worded)."""
        by = check_id(by, name="by")
        proposal = await self.aget(proposal_id)
        if proposal.status not in ("pending", "failed_gate", "blocked"):
            raise ValidationError(_not_pending(proposal))
        patch: dict[str, Any] = {
            "status": "rejected",
            "decided_by": by,
            "decided_at": utcnow().isoformat(),
            "decision_note": reason,
        }
        try:
            await self._engine.db.arun(
                self._store.decide_op(
                    proposal, patch, by=by, reason="rejected", expected_status=proposal.status
                )
            )
        except ConflictError as exc:
            fresh = await self.aget(proposal_id)
            raise ValidationError(_not_pending(fresh)) from exc
        return proposal.model_copy(update=patch)

    async def arollback(
        self,
        version: str,
        *,
        by: str,
        agent_id: str | None = None,
        team_id: str | None = None,
        note: str | None = None,
    ) -> InstructionChange:
        """Make an earlier version active again (recorded in the history with ``by``).

        ``version`` is one an approval made, or the agent's empty rule set (its version before
        any approval: ``machine.improvements.history(...)[0].from_version``).
        """
        by = check_id(by, name="by")
        stored = await self._store.aversion(version)
        if stored is not None:
            scope = Scope(stored.agent_id, stored.team_id)
            rules: tuple[Rule, ...] = tuple(stored.rules)
        else:
            scope = self._scope(agent_id, team_id)
            if version != version_id(scope, ()):
                raise NotFoundError(
                    f"no version {version!r} of {scope.label}; list them with "
                    "machine.improvements.history(agent_id=...)"
                )
            rules = ()
        for _ in range(_RETRIES):
            head = await self._store.ahead(scope)
            if head.version == version:
                raise ValidationError(f"version {version} is already active for {scope.label}")
            change = InstructionChange(
                id=new_id(),
                agent_id=scope.agent_id,
                team_id=scope.team_id,
                action="rollback",
                from_version=head.version,
                to_version=version,
                by=by,
                at=utcnow().isoformat(),
                summary=f"rollback to {version}",
                note=note,
            )
            ops, _ = self._store.switch_ops(head, rules, change=change, known=True)
            try:
                await self._engine.db.abatch(ops)
            except ConflictError:
                continue
            return change
        raise ConflictError(f"the instructions of {scope.label} kept changing; try again")

    # --- measuring ------------------------------------------------------------------------------

    async def aeffect(
        self, version: str, *, agent_id: str | None = None, team_id: str | None = None
    ) -> EffectReport:
        """Outcomes of the turns that ran with ``version`` and with the version before it.

        The decision log records the version each turn ran with.
        """
        changes = [c for c in await self._store.achanges(None) if c.to_version == version]
        if agent_id is not None or team_id is not None:
            scope = self._scope(agent_id, team_id)
            changes = [c for c in changes if Scope(c.agent_id, c.team_id) == scope]
        if not changes:
            raise NotFoundError(
                f"version {version!r} was never made active; see "
                "machine.improvements.history(agent_id=...)"
            )
        last = changes[-1]
        before = last.from_version
        traces = await atraces(
            self._engine.db,
            Scope(last.agent_id, last.team_id),
            keep=lambda t: t.record.instructions_version in (version, before),
            order_by="created_at",
            exact_team=self._engine.config.per_team,
        )
        return EffectReport(
            version=version,
            before=_stats(before, [t for t in traces if t.record.instructions_version == before]),
            after=_stats(version, [t for t in traces if t.record.instructions_version == version]),
            activated_at=last.at,
        )

    async def aimprove(
        self, *, agent_id: str | None = None, team_id: str | None = None
    ) -> ReflectionReport:
        """Reflect now on an agent's turns (see ``LearningMachine.aimprove``)."""
        return await self._engine.areflect(self._scope(agent_id, team_id), force=True)

    async def aregister(
        self,
        *,
        agent_id: str | None,
        instructions: str | None,
        tools: builtins.list[Any] | tuple[Any, ...] = (),
        model: Any = None,
    ) -> None:
        """Record an agent's base instructions, tools and model (our ``Agent`` does this)."""
        await self._engine.aregister(
            agent_id=check_optional_id(agent_id, name="agent_id"),
            instructions=instructions,
            tools=tools,
            model=model,
        )

    list = sync_twin(alist)
    get = sync_twin(aget)
    evidence = sync_twin(aevidence)
    instructions = sync_twin(ainstructions)
    versions = sync_twin(aversions)
    history = sync_twin(ahistory)
    approve = sync_twin(aapprove)
    reject = sync_twin(areject)
    rollback = sync_twin(arollback)
    effect = sync_twin(aeffect)
    improve = sync_twin(aimprove)
    register = sync_twin(aregister)


def _not_pending(proposal: ImprovementProposal) -> str:
    if proposal.status == "failed_gate" and proposal.gate is not None:
        return (
            f"proposal {proposal.id} failed the gate ({proposal.gate.reason}); it is kept for "
            "the record and cannot be approved"
        )
    if proposal.status == "blocked":
        reasons = "; ".join(n.reason for n in proposal.screen)
        return f"proposal {proposal.id} was blocked by the screen ({reasons}); not approvable"
    who = f" by {proposal.decided_by}" if proposal.decided_by else ""
    return f"proposal {proposal.id} is already {proposal.status}{who}"
