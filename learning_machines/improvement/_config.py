"""Settings of self-improvement: when reflection runs, what it may propose, how the gate judges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pydantic_ai.models import Model

from ..exceptions import ConfigurationError
from ..stores._config_values import flag_value, number_value, whole_number

__all__ = ["SelfImprovementConfig"]


def _field(name: str) -> str:
    return f"SelfImprovementConfig.{name}"


def _interval(value: object, *, field: str) -> timedelta:
    """A positive :class:`~datetime.timedelta`; a number is refused (seconds or days?)."""
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ConfigurationError(
            f"{_field(field)} must be a positive timedelta, e.g. timedelta(days=14), not "
            f"{type(value).__name__} ({value!r})"
        )
    return value


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
        """Check and coerce the values (the rules of the store configs: one reading or refused)."""
        for name, minimum in (
            ("max_turns", 1),
            ("max_proposals", 1),
            ("min_evidence", 1),
            ("max_rule_chars", 1),
            ("max_rules", 1),
            ("max_rules_chars", 1),
            ("gate_targets", 1),
            ("gate_good_turns", 0),
            ("gate_max_regressions", 0),
        ):
            setattr(
                self, name, whole_number(getattr(self, name), field=_field(name), minimum=minimum)
            )
        if self.every_turns is not None:
            self.every_turns = whole_number(
                self.every_turns, field=_field("every_turns"), minimum=1
            )
        self.gate_min_fixed = number_value(
            self.gate_min_fixed, field=_field("gate_min_fixed"), low=0.0, high=1.0
        )
        if self.gate_min_fixed == 0.0:
            raise ConfigurationError(
                f"{_field('gate_min_fixed')}=0 would pass a change that fixes nothing: use a "
                "share above 0, up to 1"
            )
        self.per_team = flag_value(self.per_team, field=_field("per_team"))
        if self.every is not None:
            self.every = _interval(self.every, field="every")
        self.lookback = _interval(self.lookback, field="lookback")
        for name in ("model", "replay_model", "judge_model"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str | Model):
                raise ConfigurationError(
                    f"{_field(name)} must be a pydantic-ai model or a name such as "
                    f"'openai:gpt-4.1-mini', not {type(value).__name__} ({value!r})"
                )
        if self.max_rules_chars < self.max_rule_chars:
            raise ConfigurationError(
                f"{_field('max_rules_chars')}={self.max_rules_chars} must hold at least one rule "
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
