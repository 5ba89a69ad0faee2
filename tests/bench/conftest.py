"""A tiny synthetic file in LoCoMo format (never the real, CC BY-NC data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

TOPICS = [
    ("pottery", "I made a blue pottery bowl at my class"),
    ("hiking", "We went hiking up the mountain trail last weekend"),
    ("violin", "I have been practising the violin every evening"),
    ("garden", "My tomatoes in the garden are finally ripe"),
    ("marathon", "I signed up for the city marathon in October"),
    ("puppy", "We adopted a puppy named Biscuit"),
]


def _session(a: str, b: str, n: int, offset: int) -> list[dict[str, Any]]:
    turns = []
    for i in range(6):
        topic, line = TOPICS[(offset + i) % len(TOPICS)]
        speaker = a if i % 2 == 0 else b
        turn: dict[str, Any] = {"speaker": speaker, "dia_id": f"D{n}:{i + 1}", "text": line}
        if i == 3:
            turn["blip_caption"] = f"a photo of a {topic}"
        turns.append(turn)
    return turns


def sample(sample_id: str, a: str, b: str) -> dict[str, Any]:
    conv: dict[str, Any] = {"speaker_a": a, "speaker_b": b}
    for n, offset in ((1, 0), (2, 3)):
        conv[f"session_{n}"] = _session(a, b, n, offset)
        conv[f"session_{n}_date_time"] = f"1:56 pm on {n + 7} May, 2023"
    qa = [
        {
            "question": f"What did {a} make at the class?",
            "answer": "a bowl",
            "evidence": ["D1:1"],
            "category": 4,
        },
        {
            "question": "When did they go hiking?",
            "answer": "May 2023",
            "evidence": ["D1:2"],
            "category": 2,
        },
        {
            "question": "Which instrument and which race?",
            "answer": "violin, marathon",
            "evidence": ["D1:3; D1:5"],
            "category": 1,
        },
        {
            "question": "What is the puppy called?",
            "answer": "Biscuit",
            "evidence": ["D:2:3"],
            "category": 3,
        },
        {"question": "What is ripe?", "answer": "tomatoes", "evidence": ["D2:01"], "category": 4},
        {"question": "Broken evidence", "answer": "x", "evidence": ["D", "D9:1"], "category": 4},
        {"question": "No evidence", "answer": "x", "evidence": [], "category": 4},
        {
            "question": "What did they say about Mars?",
            "adversarial_answer": "nothing",
            "evidence": ["D1:1"],
            "category": 5,
        },
    ]
    return {"sample_id": sample_id, "conversation": conv, "qa": qa}


@pytest.fixture
def locomo_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-locomo.json"
    data = [sample("conv-a", "Ann", "Bob"), sample("conv-b", "Cid", "Dee")]
    path.write_text(json.dumps(data), encoding="utf-8")
    return path
