"""The hand-written assistant-chat test set (learning_machines.bench._assistant_chats)."""

import json

from learning_machines.bench._assistant_chats import assistant_chats, write_assistant_chats
from learning_machines.bench._locomo import load_locomo


def test_the_set_loads_as_locomo_with_every_evidence_turn_present(tmp_path):
    path = write_assistant_chats(tmp_path / "chats.json")
    data = load_locomo(path)
    assert [c.sample_id for c in data.conversations] == ["chat-priya", "chat-tomas"]
    assert data.skipped_evidence == 0
    assert data.fixed_evidence == 0
    for conv in data.conversations:
        turns = {e.ref: e for e in conv.episodes}
        assert conv.speakers[1] == "assistant"
        assert len(conv.questions) == 32
        for q in conv.questions:
            assert q.evidence
            assert all(ref in turns for ref in q.evidence)
            # a fact is stated by the user, never by the assistant
            assert all(turns[ref].speaker == conv.speakers[0] for ref in q.evidence)
        assert {q.category for q in conv.questions} == {1, 2, 3, 4}


def test_the_set_is_deterministic_and_questions_reword_the_facts(tmp_path):
    assert json.dumps(assistant_chats()) == json.dumps(assistant_chats())
    conv = load_locomo(write_assistant_chats(tmp_path / "c.json")).conversations[0]
    turns = {e.ref: e.text for e in conv.episodes}
    q = next(q for q in conv.questions if q.answer == "Helix")
    assert "Helix" not in q.question
    assert "Helix" in turns[q.evidence[0]]
