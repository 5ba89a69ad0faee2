"""Behavioural feedback: signals on turns, credit to what the turns recalled, and lessons.

``LearningMachine(decision_log=True, feedback=True)`` records every turn's decisions (the
decision log store), takes signals on turns — explicit (``machine.feedback(...)``), implicit
(the user's next message, read inside the turn's single extraction call) and rule-based (a tool
failed, the same question again) — credits each turn's outcome to the learnings it recalled,
and distils lessons ("when C, avoid A, because E") from outcomes that recur across sessions.
"""

from ._distill import Approach, LessonExample, LessonWrite, approach_of
from ._lessons import CANDIDATE_TYPE, LESSON_TYPE, LessonConfig, LessonStore
from ._signals import (
    DEFAULT_TRUST,
    SIGNAL_TYPE,
    FeedbackSignal,
    SignalSource,
    TurnOutcome,
    aggregate,
    is_repeat,
)
from ._store import FeedbackConfig, FeedbackStore
from ._wiring import behaviour_slots

__all__ = [
    "CANDIDATE_TYPE",
    "DEFAULT_TRUST",
    "LESSON_TYPE",
    "SIGNAL_TYPE",
    "Approach",
    "FeedbackConfig",
    "FeedbackSignal",
    "FeedbackStore",
    "LessonConfig",
    "LessonExample",
    "LessonStore",
    "LessonWrite",
    "SignalSource",
    "TurnOutcome",
    "aggregate",
    "approach_of",
    "behaviour_slots",
    "is_repeat",
]
