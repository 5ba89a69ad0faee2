"""The machine's decision log, feedback and lesson slots, resolved and connected once."""

from __future__ import annotations

from .._modes import LearningMode
from ..exceptions import ConfigurationError
from ..stores.decision_log import DecisionLogConfig, DecisionLogStore
from ._lessons import LessonStore
from ._store import FeedbackConfig, FeedbackStore

__all__ = ["behaviour_slots"]


def _decision_log(spec: object) -> DecisionLogStore | None:
    if spec is None or spec is False:
        return None
    if spec is True:
        return DecisionLogStore()
    if isinstance(spec, DecisionLogConfig):
        return spec.create_store()
    if isinstance(spec, DecisionLogStore):
        return spec
    raise ConfigurationError(
        f"decision_log= got a {type(spec).__name__}; it takes True, a DecisionLogConfig or a "
        "DecisionLogStore"
    )


def _feedback(spec: object) -> FeedbackStore | None:
    if spec is None or spec is False:
        return None
    if spec is True:
        return FeedbackStore()
    if isinstance(spec, FeedbackConfig):
        return spec.create_store()
    if isinstance(spec, FeedbackStore):
        return spec
    raise ConfigurationError(
        f"feedback= got a {type(spec).__name__}; it takes True, a FeedbackConfig or a FeedbackStore"
    )


def behaviour_slots(*, decision_log: object, feedback: object) -> dict[str, object]:
    """The ``decision_log``, ``feedback`` and ``lessons`` stores for the machine's registry.

    Feedback builds on the decision log (each record holds what its turn recalled): with
    ``feedback`` on, the decision log is on unless it was explicitly turned off, which is a
    :class:`ConfigurationError`. Implicit feedback rides the decision log's section of the
    extraction call, so it needs the decision log in BACKGROUND mode.
    """
    signals = _feedback(feedback)
    if signals is not None and decision_log is False:
        raise ConfigurationError(
            "feedback=... needs the decision log (each turn's record says what it recalled, "
            "which is what feedback credits): drop decision_log=False"
        )
    log = _decision_log(True if signals is not None and decision_log is None else decision_log)
    slots: dict[str, object] = {}
    if log is not None:
        slots["decision_log"] = log
    if signals is None or log is None:
        return slots
    lesson_config = signals.config.lesson_config
    lessons = LessonStore(lesson_config) if lesson_config is not None else None
    signals.connect(decisions=log, lessons=lessons)
    if signals.config.implicit and log.mode is LearningMode.BACKGROUND:
        log.reactions = signals
    slots["feedback"] = signals
    if lessons is not None:
        slots["lessons"] = lessons
    return slots
