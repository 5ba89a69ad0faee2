"""Settings of self-improvement: when reflection runs, what it may propose, how the gate judges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pydantic_ai.models import Model

from ..exceptions import ConfigurationError

__all__ = ["SelfImprovementConfig"]


@dataclass(kw_only=True)
class SelfImprovementConfig:
    """Self-improvement: reflection proposes small rule changes, a person approves them.

    A gate replays each change before anyone sees it; an approval gives the agent's
    instructions a new version.
    ``LearningMachine(self_improvement=True)`` uses these defaults; it needs the decision log and
    feedback (``feedback=True``), whose outcomes reflection reads.
    """

    every_turns: int | None = 50
    """Schedule a reflection for an agent every this many of its turns; it runs (one model
    call) only when feedback arrived since the last one. ``None``: only on demand."""
    every: timedelta | None = None
    """Also schedule one at most once per this interval (same condition)."""
    model: Model | str | None = None
    """The model that reflects (default: the machine's learning model)."""
    replay_model: Model | str | None = None
    """The model the gate replays turns with (default: the agent's own model when our
    ``Agent`` runs it, else :attr:`model`)."""
    judge_model: Model | str | None = None
    """The model that scores replays no rule can score (default: :attr:`model`)."""
    per_team: bool = False
    """Keep separate rules for each team of an agent (the turn's ``team_id``)."""
    lookback: timedelta = timedelta(days=14)
    """How far back reflection and the gate look for turns that went wrong or well."""
    max_turns: int = 40
    """Turns shown to the reflection call (what went wrong first, newest first)."""
    max_proposals: int = 2
    """Changes one reflection may propose."""
    min_evidence: int = 2
    """Turns that went wrong a change must cite (distinct turns, shown to the reflection)."""
    max_rule_chars: int = 300
    """Longest rule, in characters."""
    max_rules: int = 20
    """Most rules an agent's instructions may hold."""
    max_rules_chars: int = 3_000
    """Most characters all the rules together may hold."""
    gate_targets: int = 6
    """Evidence turns the gate replays (the newest)."""
    gate_good_turns: int = 6
    """Turns that went well the gate replays (those closest to the change first)."""
    gate_min_fixed: float = 0.5
    """Share of the replayed failures (that still fail without the change) the change must fix."""
    gate_max_regressions: int = 0
    """Turns that went well and no longer do, tolerated."""

    def __post_init__(self) -> None:
        for name in ("max_turns", "max_proposals", "min_evidence", "max_rule_chars", "max_rules"):
            if int(getattr(self, name)) < 1:
                raise ConfigurationError(f"SelfImprovementConfig.{name} must be at least 1")
        if self.every_turns is not None and self.every_turns < 1:
            raise ConfigurationError(
                "SelfImprovementConfig.every_turns must be at least 1, or None (on demand only)"
            )
        if not 0.0 < self.gate_min_fixed <= 1.0:
            raise ConfigurationError("SelfImprovementConfig.gate_min_fixed must be in (0, 1]")
        if self.gate_max_regressions < 0 or self.gate_targets < 1 or self.gate_good_turns < 0:
            raise ConfigurationError(
                "SelfImprovementConfig: gate_targets >= 1, gate_good_turns >= 0 and "
                "gate_max_regressions >= 0"
            )
        if self.max_rules_chars < self.max_rule_chars:
            raise ConfigurationError(
                "SelfImprovementConfig.max_rules_chars must hold at least one rule "
                f"(max_rule_chars={self.max_rule_chars})"
            )

    @classmethod
    def resolve(cls, spec: object) -> SelfImprovementConfig | None:
        """The config for ``LearningMachine(self_improvement=...)``: ``True``, a config, or off."""
        if spec is None or spec is False:
            return None
        if spec is True:
            return cls()
        if isinstance(spec, cls):
            return spec
        raise ConfigurationError(
            f"self_improvement= got a {type(spec).__name__}; it takes True or a "
            "SelfImprovementConfig"
        )
