"""Forged exports cannot plant decision records or feedback signals on another user's turns.

A decision record and a feedback signal are private to the user whose turn they are about, and
their ids are derived from that turn. Each forgery below edits carol's genuine export to reach
bob's turn; every one is refused and changes nothing. A record whose credit names someone
else's private learning may be imported (its ids are only words in its content), but rating it
never moves that learning.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from learning_machines import LearningMachine, LearningMode
from learning_machines.db import (
    Change,
    Db,
    GetLearnings,
    Learning,
    LearningFilter,
    PutLearning,
)
from learning_machines.embedders import HashEmbedder
from learning_machines.exceptions import ValidationError
from learning_machines.feedback import FeedbackConfig
from learning_machines.feedback._signals import signal_id
from learning_machines.stores._decision_model import decision_id
from learning_machines.stores.decision_log import DecisionLogConfig

from ..curation._helpers import table_dump

Forgery = Callable[[dict[str, Any], dict[str, Any]], None]
CREATE = Change(action="create", actor={"store": "test"})


def _machine(db: Db) -> LearningMachine:
    return LearningMachine(
        db=db,
        embedder=HashEmbedder(),
        decision_log=DecisionLogConfig(mode=LearningMode.AGENTIC),
        feedback=FeedbackConfig(lessons=False),
        background=False,
    )


def _turn(machine: LearningMachine, user: str, text: str) -> str:
    turn = machine.begin(text, user_id=user, session_id=f"s-{user}")
    turn.finish([text, {"role": "assistant", "content": "Done."}])
    machine.feedback(turn_id=turn.context.turn_id, score=-1)
    return turn.context.turn_id


def _world(db: Db) -> dict[str, Any]:
    """Bob's rated turn and private note, a shared note, and carol's export (carol forgotten)."""
    machine = _machine(db)
    bob_note = db.run(
        PutLearning(
            learning=Learning(learning_type="note", user_id="bob", search_text="bob's runbook"),
            change=CREATE,
        )
    )
    shared = db.run(
        PutLearning(
            learning=Learning(learning_type="note", namespace="global", search_text="Use UTC"),
            change=CREATE,
        )
    )
    bob_turn = _turn(machine, "bob", "deploy billing")
    _turn(machine, "carol", "deploy search")
    export = json.loads(json.dumps(machine.service.export("carol")))
    machine.service.forget("carol")
    return {
        "machine": machine,
        "export": export,
        "bob_turn": bob_turn,
        "bob_note": bob_note.id,
        "shared": shared.id,
    }


def _one(data: dict[str, Any], learning_type: str) -> dict[str, Any]:
    (row,) = [x for x in data["learnings"] if x["learning_type"] == learning_type]
    data["history"] = [e for e in data["history"] if e["learning_id"] != row["id"]]
    return row


def _about(row: dict[str, Any], turn: str) -> None:
    row["entity_id"] = turn
    row["content"]["turn_id"] = turn


def decision_taking_bobs_turn(data: dict[str, Any], x: dict[str, Any]) -> None:
    row = _one(data, "decision")
    _about(row, x["bob_turn"])
    row["id"] = decision_id(x["bob_turn"])


def decision_naming_another_turn_than_its_id(data: dict[str, Any], x: dict[str, Any]) -> None:
    _about(_one(data, "decision"), "some-other-turn")


def signal_about_bobs_turn(data: dict[str, Any], x: dict[str, Any]) -> None:
    row = _one(data, "feedback_signal")
    _about(row, x["bob_turn"])
    row["id"] = signal_id(x["bob_turn"], row["content"]["rater"])


def signal_taking_the_id_of_bobs_rating(data: dict[str, Any], x: dict[str, Any]) -> None:
    _one(data, "feedback_signal")["id"] = signal_id(x["bob_turn"], "explicit:bob")


FORGERIES: list[Forgery] = [
    decision_taking_bobs_turn,
    decision_naming_another_turn_than_its_id,
    signal_about_bobs_turn,
    signal_taking_the_id_of_bobs_rating,
]


@pytest.mark.parametrize("forge", FORGERIES, ids=lambda f: f.__name__)
def test_a_forged_export_is_refused_and_changes_nothing(db: Db, forge: Forgery) -> None:
    world = _world(db)
    forged = copy.deepcopy(world["export"])
    forge(forged, world)
    before = table_dump(db)
    with pytest.raises(ValidationError, match="Nothing was imported"):
        world["machine"].service.import_(forged)
    assert table_dump(db) == before


def test_the_genuine_export_with_its_decisions_and_signals_imports(db: Db) -> None:
    world = _world(db)
    counts = world["machine"].service.import_(world["export"])
    assert counts["learnings"] == 2  # carol's decision record and her signal
    (decision,) = world["machine"].decisions.list(user_id="carol")
    assert decision.verdict == "bad"
    assert world["machine"].service.import_(world["export"])["learnings"] == 0  # idempotent


def test_a_credit_naming_another_users_learning_never_moves_it(db: Db) -> None:
    world = _world(db)
    data = copy.deepcopy(world["export"])
    data["learnings"] = [x for x in data["learnings"] if x["learning_type"] == "decision"]
    data["history"] = []
    (decision,) = data["learnings"]
    decision["content"]["credit"] = {world["bob_note"]: 1.0, world["shared"]: 1.0}
    decision["content"]["outcome"] = None
    decision.update(helpful=0.0, harmful=0.0, feedback=0.0)
    machine = world["machine"]
    machine.service.import_(data)
    machine.feedback(turn_id=decision["content"]["turn_id"], score=-1, user_id="carol")
    [bob_note] = db.run(
        GetLearnings(
            ids=(world["bob_note"],),
            filter=LearningFilter(namespaces=("user",), reader_user_id="bob"),
        )
    )
    [shared] = db.run(
        GetLearnings(ids=(world["shared"],), filter=LearningFilter(namespaces=("global",)))
    )
    assert bob_note.harmful == 0.0  # carol's turn could never have recalled it
    assert shared.harmful == 1.0  # what she could read is credited as usual
