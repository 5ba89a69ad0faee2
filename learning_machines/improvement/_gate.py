"""The gate: a proposal is offered to a person only if replays show it helps and harms nothing.

Each turn is replayed twice with the same model — with the instructions as they are, and with
the change — so what the change does is told apart from what the model does anyway:

- a **target** (a turn that went wrong, cited as evidence) is *fixed* when the replay without
  the change still does what went wrong and the replay with it does something else;
  *unchanged* when both do it; *unreproduced* when even the replay without the change does not
  (then it says nothing either way);
- a **good** turn (one that went well) *regressed* when the replay without the change still
  does what went well and the replay with it no longer does; *kept* when both do; *unstable*
  when even the replay without it does not.

Turns whose action was a tool call are scored by rule (the approach: the tool calls with the
arguments the message did not dictate, as lessons name it). Turns answered in words are scored
by a judge model (one call per turn). The change passes when at least one replayed failure still
fails without it, it fixes at least ``gate_min_fixed`` of those, and no more than
``gate_max_regressions`` good turns regress. Which good turns are replayed is chosen before the
gate (``SelfImprovement.agate_change``): those closest to the change, leaving out a turn rated
good whose action went wrong at least twice as often (a rating the wrong way round).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_ai.models import Model

from ..stores._decision_model import outcome_phrase
from ._config import SelfImprovementConfig
from ._model import GateResult, ReplayCase, Rule, render_instructions, tool_notes
from ._reflect import astructured
from ._replay import Replayed, approach_key, areplay, described
from ._store import ToolSchema
from ._traces import Trace

__all__ = ["Gate", "GateUsage", "JudgeVerdict"]

Verdict = Literal["fixed", "unchanged", "unreproduced", "kept", "regressed", "unstable"]

JUDGE_INSTRUCTIONS = """\
You compare two answers an AI agent gave to the same request, one with its current \
instructions (A) and one with a proposed change (B). Answer only from what is shown."""


class JudgeVerdict(BaseModel):
    """The judge's comparison of two replies to one request."""

    verdict: Literal["better", "same", "worse"] = Field(
        description="B compared with A, for what the question asks"
    )
    reason: str = Field(default="", description="why, in one sentence")


@dataclass
class GateUsage:
    """Model requests the gate made."""

    replay_calls: int = 0
    judge_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


def _model_name(model: Model) -> str:
    return f"{model.system}:{model.model_name}"


@dataclass
class Gate:
    """Replays turns with and without a change, and decides (see the module docstring)."""

    replay_model: Model
    judge_model: Model
    config: SelfImprovementConfig
    usage: GateUsage = field(default_factory=GateUsage)

    async def _replay(
        self, trace: Trace, *, base: str, rules: Sequence[Rule], tools: Sequence[ToolSchema]
    ) -> Replayed:
        done = await areplay(
            self.replay_model,
            instructions=render_instructions(base, rules),
            message=trace.record.message,
            tools=tools,
            notes=tool_notes(rules),
        )
        self.usage.replay_calls += 1
        self.usage.input_tokens += done.usage.input_tokens or 0
        self.usage.output_tokens += done.usage.output_tokens or 0
        return done

    async def _judge(self, trace: Trace, without: Replayed, with_change: Replayed) -> JudgeVerdict:
        record = trace.record
        if trace.verdict == "bad":
            question = (
                f"The agent's answer to this request went wrong: "
                f"{outcome_phrase(record.outcome)}. Is B better than A at avoiding that?"
            )
        else:
            question = (
                f'The agent\'s answer to this request went well ("{record.answer[:300]}"). '
                "Is B better, the same, or worse than A at doing what went well?"
            )
        prompt = (
            f'Request: "{record.message}"\n{question}\n\n'
            f"A: {without.describe()} {without.text[:600]}\n"
            f"B: {with_change.describe()} {with_change.text[:600]}"
        )
        verdict, usage = await astructured(
            self.judge_model,
            output_type=JudgeVerdict,
            instructions=JUDGE_INSTRUCTIONS,
            prompt=prompt,
            name="gate judge",
        )
        self.usage.judge_calls += 1
        self.usage.input_tokens += usage.input_tokens or 0
        self.usage.output_tokens += usage.output_tokens or 0
        return JudgeVerdict.model_validate(verdict)

    async def _case(
        self,
        trace: Trace,
        kind: Literal["target", "good"],
        *,
        base: str,
        before: Sequence[Rule],
        after: Sequence[Rule],
        tools: Sequence[ToolSchema],
    ) -> ReplayCase:
        record = trace.record
        app_calls = [c for c in record.tool_calls if c.source == "app"]
        original = approach_key(record.message, app_calls)
        without = await self._replay(trace, base=base, rules=before, tools=tools)
        with_change = await self._replay(trace, base=base, rules=after, tools=tools)
        shown = {
            "original": described(record.message, app_calls, record.answer),
            "without": without.describe(),
            "with_change": with_change.describe(),
        }
        verdict: Verdict
        if original is not None:
            same_before = without.approach == original
            same_after = with_change.approach == original
            if kind == "target":
                verdict = (
                    "unreproduced" if not same_before else "unchanged" if same_after else "fixed"
                )
            else:
                verdict = "unstable" if not same_before else "kept" if same_after else "regressed"
            return ReplayCase(
                turn_id=trace.turn_id, kind=kind, verdict=verdict, scored_by="rule", **shown
            )
        judged = await self._judge(trace, without, with_change)
        if kind == "target":
            verdict = "fixed" if judged.verdict == "better" else "unchanged"
        else:
            verdict = "regressed" if judged.verdict == "worse" else "kept"
        return ReplayCase(
            turn_id=trace.turn_id,
            kind=kind,
            verdict=verdict,
            scored_by="judge",
            note=judged.reason[:300],
            **shown,
        )

    async def arun(
        self,
        *,
        base: str,
        before: Sequence[Rule],
        after: Sequence[Rule],
        targets: Sequence[Trace],
        good: Sequence[Trace],
        tools: Sequence[ToolSchema],
        version: str,
    ) -> GateResult:
        """Replay ``targets`` and ``good`` turns with ``before`` and ``after`` rules; decide."""
        calls_before = (self.usage.replay_calls, self.usage.judge_calls)
        cases = [
            await self._case(t, "target", base=base, before=before, after=after, tools=tools)
            for t in targets[: self.config.gate_targets]
        ]
        cases += [
            await self._case(t, "good", base=base, before=before, after=after, tools=tools)
            for t in good[: self.config.gate_good_turns]
        ]
        reproduced = [c for c in cases if c.kind == "target" and c.verdict != "unreproduced"]
        fixed = sum(1 for c in reproduced if c.verdict == "fixed")
        kept = [c for c in cases if c.kind == "good" and c.verdict != "unstable"]
        regressions = sum(1 for c in kept if c.verdict == "regressed")
        need = self.config.gate_min_fixed
        if not reproduced:
            passed, reason = False, "no replayed failure still fails without the change"
        elif fixed / len(reproduced) < need:
            passed = False
            reason = f"it fixed {fixed} of {len(reproduced)} replayed failures (needs {need:.0%})"
        elif regressions > self.config.gate_max_regressions:
            passed = False
            reason = (
                f"{regressions} of {len(kept)} turns that went well regressed (at most "
                f"{self.config.gate_max_regressions} allowed)"
            )
        else:
            passed = True
            reason = (
                f"it fixed {fixed} of {len(reproduced)} replayed failures; {len(kept)} turns that "
                "went well kept their outcome"
            )
        return GateResult(
            passed=passed,
            reason=reason,
            targets=len(reproduced),
            fixed=fixed,
            good=len(kept),
            regressions=regressions,
            cases=cases,
            base_version=version,
            model=_model_name(self.replay_model),
            replay_calls=self.usage.replay_calls - calls_before[0],
            judge_calls=self.usage.judge_calls - calls_before[1],
        )
