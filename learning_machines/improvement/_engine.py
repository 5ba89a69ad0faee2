"""Self-improvement of one machine: reflection → checks → screen → gate → stored proposal.

:class:`SelfImprovement` holds the store, the models and the schedule. ``areflect`` makes the
one reflection call for a scope and turns each change it proposes into an
:class:`ImprovementProposal`: dropped with a reason when the checks refuse it, kept as
``blocked`` when the screen finds something, ``failed_gate`` when the replay says it does not
help or harms, and ``pending`` — offered to a person — only when it passed both.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from pydantic_ai.models import Model

from .._models import resolve_model
from .._turn_context import TurnContext
from ..db import Db, LearningFilter, ListLearnings, new_id, utcnow
from ..embedders import Embedder, aembed
from ..exceptions import ConfigurationError, ValidationError
from ..feedback import LESSON_TYPE
from ..feedback._distill import lesson_line
from ._config import SelfImprovementConfig
from ._gate import Gate, GateUsage
from ._model import (
    ActiveInstructions,
    GateResult,
    ImprovementProposal,
    ReflectionJob,
    Rule,
    RuleLimits,
    Scope,
    fingerprint,
    rule_words,
    same_change,
    tool_notes,
)
from ._reflect import (
    REFLECTION_INSTRUCTIONS,
    Draft,
    ReflectionOutput,
    astructured,
    check_proposed,
    reflection_prompt,
)
from ._replay import approach_key
from ._screening import screen_proposal
from ._store import AgentProfile, Head, ImprovementStore
from ._tools import tool_schemas, tools_from
from ._traces import Trace, atraces

__all__ = ["ImprovementUsage", "ReflectionReport", "SelfImprovement"]

logger = logging.getLogger("learning_machines")


@dataclass
class ImprovementUsage:
    """Model use of self-improvement in this process (for cost reports and tests)."""

    reflections: int = 0
    """Reflections that called the model (one call each)."""
    reflection_calls: int = 0
    replay_calls: int = 0
    judge_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def calls(self) -> int:
        """Every model request: reflection, replays and judge."""
        return self.reflection_calls + self.replay_calls + self.judge_calls


@dataclass
class ReflectionReport:
    """What one reflection did."""

    scope: Scope
    ran: bool
    """Whether the model was called."""
    reason: str = ""
    """Why it did not run, or a summary of what it did."""
    turns_seen: int = 0
    proposals: list[ImprovementProposal] = field(default_factory=list)
    """Every proposal it stored: pending, failed_gate or blocked."""
    dropped: list[tuple[str, str]] = field(default_factory=list)
    """Changes the model proposed that the checks refused: ``(what, why)``."""

    @property
    def offered(self) -> list[ImprovementProposal]:
        """The proposals offered for approval (passed the screen and the gate)."""
        return [p for p in self.proposals if p.status == "pending"]


def _model_name(model: Model | str | None) -> str | None:
    if model is None or isinstance(model, str):
        return model
    return f"{model.system}:{model.model_name}"


class SelfImprovement:
    """The self-improvement of one machine (see the module docstring)."""

    def __init__(
        self,
        *,
        db: Db,
        config: SelfImprovementConfig,
        model: Callable[[], Model | str | None],
        embedder: Embedder,
    ) -> None:
        self.db = db
        self.config = config
        self.store = ImprovementStore(db)
        self.embedder = embedder
        self.usage = ImprovementUsage()
        self._machine_model = model
        self._agent_models: dict[str | None, Model] = {}
        self._turns: dict[str, int] = {}
        self._lock = threading.Lock()
        self.limits = RuleLimits(
            max_rule_chars=config.max_rule_chars,
            max_rules=config.max_rules,
            max_rules_chars=config.max_rules_chars,
        )

    # --- scopes, models -------------------------------------------------------------------------

    def scope(self, agent_id: str | None, team_id: str | None = None) -> Scope:
        """The scope a turn of ``agent_id`` (of ``team_id``) belongs to."""
        return Scope(agent_id, team_id if self.config.per_team else None)

    def _model(self, chosen: Model | str | None, what: str) -> Model:
        model = chosen if chosen is not None else self.config.model or self._machine_model()
        if model is None:
            raise ConfigurationError(
                f"self-improvement needs a model for {what}: pass model= to LearningMachine or "
                "SelfImprovementConfig(model='provider:model')"
            )
        return resolve_model(model)

    def gate(self, agent_id: str | None) -> Gate:
        """A gate with the configured models (the agent's own model replays, when known)."""
        replay = self.config.replay_model or self._agent_models.get(agent_id)
        return Gate(
            replay_model=self._model(replay, "the gate's replays"),
            judge_model=self._model(self.config.judge_model, "the gate's judge"),
            config=self.config,
        )

    # --- the agent's side -----------------------------------------------------------------------

    async def aregister(
        self,
        *,
        agent_id: str | None,
        instructions: str | None,
        tools: Sequence[Any] = (),
        model: Model | str | None = None,
    ) -> None:
        """Record what an agent runs with: base instructions, tools, model.

        Reflection and replays in any process use it. Our ``Agent`` calls this itself.
        """
        if model is not None and not isinstance(model, str):
            self._agent_models[agent_id] = model
        elif isinstance(model, str):
            self._agent_models.setdefault(agent_id, resolve_model(model))
        await self.store.aregister(
            AgentProfile(
                agent_id=agent_id,
                base=instructions or "",
                tools=tool_schemas(tools),
                model=_model_name(model),
            )
        )

    async def aactive(self, scope: Scope, *, base: str | None = None) -> ActiveInstructions:
        """The instructions ``scope`` runs with now (``base``: the agent's own, if known here)."""
        head = await self.store.ahead(scope)
        if base is None:
            profile = await self.store.aprofile(scope.agent_id)
            base = "" if profile is None else profile.base
        return ActiveInstructions(
            agent_id=scope.agent_id,
            team_id=scope.team_id,
            version=head.version,
            base=base,
            rules=head.rules,
            tool_notes=tool_notes(head.rules),
        )

    # --- the schedule ---------------------------------------------------------------------------

    def after_turn(self, context: TurnContext) -> ReflectionJob | None:
        """Count a finished turn of its scope; the reflection now due, if any."""
        scope = self.scope(context.agent_id, context.team_id)
        every = self.config.every_turns
        if every:
            with self._lock:
                count = self._turns.get(scope.key, 0) + 1
                self._turns[scope.key] = 0 if count >= every else count
            if count >= every:
                return ReflectionJob(
                    agent_id=scope.agent_id,
                    team_id=scope.team_id,
                    key=f"reflect:{scope.key}:turns:{new_id()}",
                )
        if self.config.every is not None:
            window = int(utcnow().timestamp() // self.config.every.total_seconds())
            return ReflectionJob(
                agent_id=scope.agent_id,
                team_id=scope.team_id,
                key=f"reflect:{scope.key}:window:{window}",
            )
        return None

    async def arun_job(self, job: ReflectionJob) -> ReflectionReport:
        """A scheduled reflection: it runs only when feedback arrived since the last one."""
        report = await self.areflect(Scope(job.agent_id, job.team_id), force=False)
        logger.info("reflection for %s: %s", report.scope.label, report.reason)
        return report

    # --- reflection -----------------------------------------------------------------------------

    async def _traces(
        self, scope: Scope, *, since: datetime | None, keep: Callable[[Trace], bool], limit: int
    ) -> list[Trace]:
        return await atraces(
            self.db,
            scope,
            since=since,
            keep=keep,
            limit=limit,
            exact_team=self.config.per_team,
        )

    async def _lessons(self) -> list[str]:
        rows = await self.db.arun(
            ListLearnings(filter=LearningFilter(learning_types=(LESSON_TYPE,)), limit=10)
        )
        return [lesson_line(r) for r in rows]

    async def areflect(
        self, scope: Scope, *, force: bool = True, now: datetime | None = None
    ) -> ReflectionReport:
        """Reflect on ``scope``'s turns: one model call, then checks, screen and gate.

        ``force=False`` (the schedule) skips the call when no feedback arrived since the last
        reflection. Nothing is proposed (and no call made) when no turn went wrong.
        """
        now = now or utcnow()
        head = await self.store.ahead(scope)
        if not force:
            fresh = await self._traces(
                scope,
                since=head.reflected_at,
                keep=lambda t: t.record.outcome is not None,
                limit=1,
            )
            if not fresh:
                return ReflectionReport(
                    scope=scope, ran=False, reason="no new feedback since the last reflection"
                )
        proposals = await self.store.aproposals(scope)
        # A failure is cited by one proposal at most, unless that one was rejected or withdrawn:
        # one that failed the gate is not tried again on the same turns.
        used = {
            e.turn_id
            for p in proposals
            if p.status in ("pending", "approved", "failed_gate", "blocked")
            for e in p.evidence
        }
        since = now - self.config.lookback
        failures = await self._traces(
            scope,
            since=since,
            keep=lambda t: t.verdict == "bad" and t.turn_id not in used,
            limit=self.config.max_turns,
        )
        if not failures:
            await self.store.aset_reflected(scope, now)
            return ReflectionReport(
                scope=scope, ran=False, reason="no turn went wrong that no change addresses yet"
            )
        successes = await self._traces(
            scope, since=since, keep=lambda t: t.verdict == "good", limit=self.config.max_turns
        )
        profile = await self.store.aprofile(scope.agent_id) or AgentProfile(agent_id=scope.agent_id)
        rejected = [p for p in proposals if p.status == "rejected"]
        open_ = [p for p in proposals if p.status in ("pending", "approved")]
        prompt = reflection_prompt(
            label=scope.label,
            version=head.version,
            base=profile.base,
            rules=head.rules,
            tools=profile.tools,
            failures=failures,
            successes=successes[: max(3, self.config.max_turns // 4)],
            lessons=await self._lessons(),
            rejected=[f"- {p.summary}" for p in rejected],
            open_changes=[f"- {p.summary}" for p in open_ if p.status == "pending"],
        )
        model = self._model(None, "reflection")
        output, usage = await astructured(
            model,
            output_type=ReflectionOutput,
            instructions=REFLECTION_INSTRUCTIONS.format(
                max_changes=self.config.max_proposals, min_evidence=self.config.min_evidence
            ),
            prompt=prompt,
            name="reflection",
        )
        self.usage.reflections += 1
        self.usage.reflection_calls += 1
        self.usage.input_tokens += usage.input_tokens or 0
        self.usage.output_tokens += usage.output_tokens or 0
        report = ReflectionReport(scope=scope, ran=True, turns_seen=len(failures) + len(successes))
        # Already proposed, or in force now (a change rolled back may be proposed again; a
        # rejected one never).
        taken = [frozenset(p.words) for p in open_ if p.status == "pending"] + [
            rule_words(r.text, action="add", tool=r.tool) for r in head.rules
        ]
        reflection = new_id()
        by_id = {t.turn_id: t for t in failures}
        user_texts = [
            text
            for t in [*failures, *successes]
            for text in (t.record.message, (t.record.outcome.comment if t.record.outcome else ""))
            if text
        ]
        for proposed in ReflectionOutput.model_validate(output).changes[
            : self.config.max_proposals
        ]:
            try:
                draft = check_proposed(
                    proposed,
                    rules=head.rules,
                    failures=by_id,
                    tools=[t.name for t in profile.tools] or None,
                    limits=self.limits,
                    min_evidence=self.config.min_evidence,
                    rejected=[frozenset(p.words) for p in rejected],
                    taken=taken,
                )
            except ValidationError as exc:
                what = f"{proposed.action}: {proposed.stop} / {proposed.do} / {proposed.when}"
                report.dropped.append((what[:200], str(exc)))
                logger.info("reflection for %s dropped a change: %s", scope.label, exc)
                continue
            taken.append(draft.words)
            proposal = await self._propose(
                draft,
                head=head,
                profile=profile,
                traces=by_id,
                user_texts=user_texts,
                reflection=reflection,
                now=now,
            )
            if proposal is None:
                report.dropped.append((draft.rule_text or draft.change.action, _DUPLICATE))
                continue
            report.proposals.append(proposal)
        await self.store.aset_reflected(scope, now)
        counts = {s: sum(1 for p in report.proposals if p.status == s) for s in _STATUSES}
        report.reason = (
            f"{len(report.proposals)} proposal(s): {counts['pending']} offered for approval, "
            f"{counts['failed_gate']} failed the gate, {counts['blocked']} blocked by the "
            f"screen; {len(report.dropped)} dropped"
        )
        return report

    async def _propose(
        self,
        draft: Draft,
        *,
        head: Head,
        profile: AgentProfile,
        traces: dict[str, Trace],
        user_texts: Sequence[str],
        reflection: str,
        now: datetime,
    ) -> ImprovementProposal | None:
        """Screen, gate and store a draft; ``None`` when another reflection offered it first."""
        scope = head.scope

        def same(other: ImprovementProposal) -> bool:
            return same_change(draft.words, other.words)

        if any(same(p) for p in await self.store.aproposals(scope) if p.status == "pending"):
            return None  # before spending replays on it
        screen = screen_proposal(
            texts=[draft.rule_text, draft.expected_effect, draft.risk], user_texts=user_texts
        )
        gate: GateResult | None = None
        status = "blocked"
        if not screen:
            gate = await self.agate_change(
                scope=scope,
                profile=profile,
                before=head.rules,
                after=draft.rules_after,
                version=head.version,
                targets=[traces[e.turn_id] for e in draft.evidence],
                text=draft.rule_text or draft.target_text or "",
                words=draft.words,
                now=now,
            )
            status = "pending" if gate.passed else "failed_gate"
        proposal = ImprovementProposal(
            id=new_id(),
            agent_id=scope.agent_id,
            team_id=scope.team_id,
            change=draft.change,
            rule_text=draft.rule_text,
            target_text=draft.target_text,
            evidence=list(draft.evidence),
            expected_effect=draft.expected_effect,
            risk=draft.risk,
            base_version=head.version,
            status=status,  # type: ignore[arg-type]
            gate=gate,
            screen=list(screen),
            words=sorted(draft.words),
            fingerprint=fingerprint(draft.words),
            created_at=now.isoformat(),
            reflection=reflection,
        )
        if not await self.store.aput_proposal(proposal, same=same):
            return None
        return proposal

    async def agate_change(
        self,
        *,
        scope: Scope,
        profile: AgentProfile | None,
        before: Sequence[Rule],
        after: Sequence[Rule],
        version: str,
        targets: Sequence[Trace],
        text: str,
        words: frozenset[str],
        now: datetime | None = None,
    ) -> GateResult:
        """Run the gate for one change: its evidence, and the good turns it could harm."""
        since = (now or utcnow()) - self.config.lookback
        limit = 4 * self.config.max_turns
        good_pool = await self._traces(
            scope, since=since, keep=lambda t: t.verdict == "good", limit=limit
        )
        bad_pool = await self._traces(
            scope, since=since, keep=lambda t: t.verdict == "bad", limit=limit
        )
        cited = {t.turn_id for t in targets}
        good, contested = await self._good_sample(
            [t for t in good_pool if t.turn_id not in cited], bad_pool, text=text, words=words
        )
        base = "" if profile is None else profile.base
        tools = (profile.tools if profile is not None else []) or tools_from([*targets, *good])
        gate = self.gate(scope.agent_id)
        result = await gate.arun(
            base=base,
            before=before,
            after=after,
            targets=targets,
            good=good,
            tools=tools,
            version=version,
        )
        self._count(gate.usage)
        if contested:
            result = result.model_copy(
                update={
                    "contested": contested,
                    "reason": f"{result.reason} ({contested} turn(s) rated good were left out: "
                    "the same action went wrong at least twice as often)",
                }
            )
        return result

    def _count(self, usage: GateUsage) -> None:
        self.usage.replay_calls += usage.replay_calls
        self.usage.judge_calls += usage.judge_calls
        self.usage.input_tokens += usage.input_tokens
        self.usage.output_tokens += usage.output_tokens

    async def _good_sample(
        self, pool: Sequence[Trace], bad: Sequence[Trace], *, text: str, words: frozenset[str]
    ) -> tuple[list[Trace], int]:
        """The turns that went well closest to the change first (what it could harm).

        A turn rated good whose action went wrong at least twice as often as it went well (a
        rating the wrong way round, most likely) is left out; returns how many were.
        """
        outcomes: dict[str, list[int]] = {}
        for trace, good in [*((t, 1) for t in pool), *((t, 0) for t in bad)]:
            key = _approach(trace)
            if key is not None:
                outcomes.setdefault(key, [0, 0])[good] += 1

        def contested(trace: Trace) -> bool:
            key = _approach(trace)
            if key is None:
                return False
            went_wrong, went_well = outcomes[key]
            return went_wrong >= 2 * went_well

        kept = [t for t in pool if not contested(t)]
        if not kept:
            return [], len(pool)
        vector = np.asarray((await aembed(self.embedder, [text]))[0], dtype=float)

        def closeness(trace: Trace) -> float:
            if trace.embedding is not None and trace.embedder == self.embedder.name:
                other = np.asarray(trace.embedding, dtype=float)
                norm = float(np.linalg.norm(vector) * np.linalg.norm(other)) or 1.0
                return float(vector @ other) / norm
            mine = set(rule_words(trace.record.message, action="add", tool=None))
            return len(mine & words) / max(1, len(mine | words))

        ranked = sorted(kept, key=closeness, reverse=True)
        return ranked[: self.config.gate_good_turns], len(pool) - len(kept)


def _approach(trace: Trace) -> str | None:
    calls = [c for c in trace.record.tool_calls if c.source == "app"]
    return approach_key(trace.record.message, calls)


_STATUSES = ("pending", "failed_gate", "blocked")
_DUPLICATE = "the same change is already proposed or made"
