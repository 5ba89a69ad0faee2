from datetime import UTC, datetime

import pytest

from learning_machines.bench import load_locomo
from learning_machines.bench._locomo import normalise_evidence, parse_session_date


def test_parse_session_date():
    assert parse_session_date("1:56 pm on 8 May, 2023") == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert parse_session_date("12:04 am on 1 January, 2024").hour == 0
    with pytest.raises(ValueError, match="unreadable"):
        parse_session_date("yesterday")


def test_normalise_evidence_quirks():
    assert normalise_evidence(["D8:6; D9:17"]) == (["D8:6", "D9:17"], 1, [])
    assert normalise_evidence(["D:11:26"]) == (["D11:26"], 1, [])
    assert normalise_evidence(["D30:05"]) == (["D30:5"], 1, [])
    assert normalise_evidence(["D1:3", "D"]) == (["D1:3"], 0, ["D"])


def test_load_locomo_turns_sessions_captions_and_questions(locomo_file):
    data = load_locomo(locomo_file)
    assert [c.sample_id for c in data.conversations] == ["conv-a", "conv-b"]
    conv = data.conversations[0]
    assert conv.speakers == ("Ann", "Bob")
    assert len(conv.episodes) == 12
    first, fourth = conv.episodes[0], conv.episodes[3]
    assert first.ref == "D1:1"
    assert first.speaker == "Ann"
    assert first.session_id == "conv-a/session_1"
    assert first.at == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert conv.episodes[1].at > first.at  # turns keep their order in time
    assert fourth.caption
    assert "[image: a photo of" in fourth.full_text
    assert conv.episodes[6].at.day == 9  # session 2 has its own date
    evidence = {q.question: q.evidence for q in conv.questions}
    assert evidence["Which instrument and which race?"] == ("D1:3", "D1:5")
    assert evidence["What is the puppy called?"] == ("D2:3",)
    assert evidence["What is ripe?"] == ("D2:1",)
    assert evidence["Broken evidence"] == ()
    # per conversation: "D" unparsable and "D9:1" names no turn
    assert data.skipped_evidence == 4
    assert data.fixed_evidence == 6
    assert load_locomo(locomo_file, limit=1).conversations[0].sample_id == "conv-a"


def test_adversarial_questions_keep_the_trap_apart_from_the_answer(locomo_file):
    questions = {q.question: q for q in load_locomo(locomo_file).conversations[0].questions}
    trap = questions["What did they say about Mars?"]
    assert trap.category == 5
    assert trap.answer == ""  # no answer in the conversation: the trap is not the reference
    assert trap.adversarial_answer == "nothing"
    assert questions["What is ripe?"].answer == "tomatoes"
    assert questions["What is ripe?"].adversarial_answer == ""
