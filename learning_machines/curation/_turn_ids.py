"""Ids of the rows written about one turn: its decision record and its feedback signals.

The decision log (a store) and feedback write these rows; curation's import checks that an
exported row carries the id derived for the turn it names, and finds a turn's owner through the
turn's decision record. The ids are pure functions of the turn, so they live here, below all
three, and nobody has to import upward.
"""

from __future__ import annotations

from ..db import stable_id

__all__ = ["DECISION_TYPE", "SIGNAL_TYPE", "decision_id", "signal_id"]

#: Learning type of decision records.
DECISION_TYPE = "decision"

#: Learning type of stored feedback signals.
SIGNAL_TYPE = "feedback_signal"


def decision_id(turn_id: str) -> str:
    """Id of a turn's decision record (isolation is by its owner, like every private row)."""
    return stable_id("decision", turn_id)


def signal_id(turn_id: str, rater: str) -> str:
    """One id per turn and rater, so a rater's new signal replaces their old one."""
    return stable_id("signal", turn_id, rater)
