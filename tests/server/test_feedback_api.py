"""Feedback over HTTP on both backends: a user rates their own turns, reviewers rate any turn,
nobody else's turn is found; the decision log is listed for the key's own user."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from learning_machines import LearningMachine
from learning_machines.db import Db
from learning_machines.embedders import HashEmbedder
from learning_machines.server import create_app

from ._support import auth, keyring
from .conftest import Served


def _rate(served: Served, turn_id: str, who: str, score: float, **body: object) -> Any:
    return served.client.post(
        f"/v1/turns/{turn_id}/feedback", json={"score": score, **body}, headers=auth(who)
    )


def test_a_user_rates_their_own_turn_and_the_outcome_is_recorded(served: Served) -> None:
    turn = served.alice.finished_turn
    rated = _rate(served, turn, "alice", -1, comment="the deploy broke")
    assert rated.status_code == 200, rated.text
    body = rated.json()
    assert (body["user_id"], body["rater"], body["score"]) == ("alice", "explicit:alice", -1.0)
    # Her new rating replaced her earlier +1 (seeded): the outcome is now bad.
    assert body["decision"]["verdict"] == "bad"
    assert body["decision"]["record"]["outcome"]["comment"] == "the deploy broke"
    listed = served.client.get(
        "/v1/decisions", params={"outcome": "bad"}, headers=auth("alice")
    ).json()
    assert [d["turn_id"] for d in listed] == [turn]


def test_another_users_turn_is_not_found_and_stays_as_it_was(served: Served) -> None:
    turn = served.alice.finished_turn
    before = served.machine.decisions.get(turn, user_id="alice")
    theirs = _rate(served, turn, "bob", -1)
    unknown = _rate(served, "no-such-turn", "bob", -1)
    assert theirs.status_code == unknown.status_code == 404
    # The answer is the same as for an id that does not exist: ids cannot be probed.
    assert theirs.json()["detail"].replace(turn, "X") == unknown.json()["detail"].replace(
        "no-such-turn", "X"
    )
    assert served.machine.decisions.get(turn, user_id="alice") == before
    # Bob cannot list her log either, and his own is his.
    assert (
        served.client.get(
            "/v1/decisions", params={"user_id": "alice"}, headers=auth("bob")
        ).status_code
        == 403
    )
    own = served.client.get("/v1/decisions", headers=auth("bob")).json()
    assert [d["user_id"] for d in own] == ["bob"]


def test_a_reviewer_rates_any_turn_without_replacing_the_users_rating(served: Served) -> None:
    turn = served.alice.finished_turn
    rated = _rate(served, turn, "carol", -1, comment="wrong service")
    assert rated.status_code == 200, rated.text
    assert rated.json()["rater"] == "explicit:reviewer:carol"
    signals = served.machine.decisions.signals(turn, user_id="alice")
    assert sorted(s.rater for s in signals) == ["explicit:alice", "explicit:reviewer:carol"]
    # Two explicit ratings, +1 and -1: the outcome is their mean.
    assert rated.json()["decision"]["verdict"] == "unclear"
    # A reviewer lists a user's log by naming the user (and must name one).
    named = served.client.get("/v1/decisions", params={"user_id": "alice"}, headers=auth("carol"))
    assert {d["turn_id"] for d in named.json()} == {turn}
    nobody = served.client.get("/v1/decisions", headers=auth("carol"))
    assert nobody.status_code == 422


def test_confused_ratings_are_refused_and_change_nothing(served: Served) -> None:
    turn = served.alice.finished_turn
    before = served.machine.decisions.get(turn, user_id="alice")
    for body in ({"score": 2}, {"score": "bad"}, {}, {"score": 1, "comment": "x" * 2001}):
        refused = served.client.post(f"/v1/turns/{turn}/feedback", json=body, headers=auth("alice"))
        assert refused.status_code == 422, body
    open_turn = _rate(served, served.alice.open_turn, "alice", 1)
    assert open_turn.status_code == 404  # not finished: nothing to rate yet
    bad_filter = served.client.get(
        "/v1/decisions", params={"outcome": "meh"}, headers=auth("alice")
    )
    assert bad_filter.status_code == 422
    assert served.machine.decisions.get(turn, user_id="alice") == before


def test_a_machine_without_feedback_says_how_to_turn_it_on(db: Db) -> None:
    machine = LearningMachine(db=db, embedder=HashEmbedder(), background=False)
    app = create_app(machine, keys=keyring())
    with TestClient(app, base_url="http://127.0.0.1") as client:
        rated = client.post("/v1/turns/t1/feedback", json={"score": 1}, headers=auth("alice"))
        listed = client.get("/v1/decisions", headers=auth("alice"))
    assert rated.status_code == listed.status_code == 422
    assert "feedback=True" in rated.json()["detail"]
    assert "decision_log" in listed.json()["detail"]
    machine.close()
