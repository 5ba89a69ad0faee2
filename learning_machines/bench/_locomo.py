"""Read conversations in LoCoMo format (Maharana et al., 2024) into episodes and questions.

The file is a list of samples: ``sample_id``, ``conversation`` (``speaker_a``, ``speaker_b``,
``session_N`` turns with ``dia_id`` ``"D<session>:<turn>"``, optional ``blip_caption``, and
``session_N_date_time`` such as ``"1:56 pm on 8 May, 2023"``) and ``qa`` (``question``,
``evidence`` dia ids, ``category``). Malformed evidence ids (``"D8:6; D9:17"``, ``"D:11:26"``,
``"D30:05"``) are split and normalised; what cannot be parsed is skipped and counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..stores import Episode

__all__ = [
    "CATEGORY_NAMES",
    "Conversation",
    "LocomoData",
    "Question",
    "load_locomo",
    "normalise_evidence",
    "parse_session_date",
]

#: Question categories as the LoCoMo authors' evaluation code numbers them.
CATEGORY_NAMES: Mapping[int, str] = {
    1: "multi-hop",
    2: "temporal",
    3: "open-domain",
    4: "single-hop",
    5: "adversarial",
}

_SESSION_KEY = re.compile(r"^session_(\d+)$")
_DIA_ID = re.compile(r"^D:?(\d+):0*(\d+)$")
_DATE = re.compile(
    r"(\d{1,2}):(\d{2})\s*([ap]m)\s+on\s+(\d{1,2})\s+([A-Za-z]+),?\s+(\d{4})", re.IGNORECASE
)
# Turns of one session are a few seconds apart so they keep their order when sorted by time.
_TURN_STEP = timedelta(seconds=30)


@dataclass(frozen=True, kw_only=True)
class Question:
    """One question with the turns that hold its answer."""

    question: str
    """The question, as asked."""
    category: int
    """LoCoMo category (1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop, 5 adversarial)."""
    evidence: tuple[str, ...]
    """Normalised dia ids (``"D1:3"``) of the evidence turns."""
    answer: str = ""
    """The reference answer (empty for adversarial questions)."""
    adversarial_answer: str = ""
    """For adversarial questions (category 5): the tempting wrong answer the data set gives; the
    right reply is that the conversation does not say."""


@dataclass(frozen=True, kw_only=True)
class Conversation:
    """One LoCoMo sample: its turns as episodes, and its questions."""

    sample_id: str
    """The sample's id (``"conv-26"``); used as the user id when ingesting."""
    speakers: tuple[str, str]
    """The two participants."""
    episodes: tuple[Episode, ...]
    """Every turn in order; ``ref`` is the dia id, ``session_id`` ``"<sample>/session_<n>"``."""
    questions: tuple[Question, ...]
    """Every question, all categories."""


@dataclass(frozen=True, kw_only=True)
class LocomoData:
    """A loaded LoCoMo file and what had to be skipped."""

    conversations: tuple[Conversation, ...]
    """The samples, in file order."""
    skipped_evidence: int = 0
    """Evidence ids that could not be parsed, or name no turn of the conversation."""
    fixed_evidence: int = 0
    """Evidence ids that were malformed but normalised (``"D30:05"`` → ``"D30:5"``)."""
    skipped_examples: tuple[str, ...] = field(default_factory=tuple)
    """Up to ten of the skipped ids, for the report."""


def parse_session_date(text: str) -> datetime:
    """``"1:56 pm on 8 May, 2023"`` → an aware UTC datetime (``ValueError`` if unreadable)."""
    m = _DATE.search(text)
    if not m:
        raise ValueError(f"unreadable LoCoMo session date: {text!r}")
    hour, minute, ampm, day, month, year = m.groups()
    h = int(hour) % 12 + (12 if ampm.lower() == "pm" else 0)
    date = datetime.strptime(f"{day} {month[:3]} {year}", "%d %b %Y")
    return date.replace(hour=h, minute=int(minute), tzinfo=UTC)


def normalise_evidence(raw: Sequence[Any]) -> tuple[list[str], int, list[str]]:
    """Split and normalise evidence ids; return ``(ids, fixed, unparsable)``.

    ``"D8:6; D9:17"`` gives two ids, ``"D:11:26"`` and ``"D30:05"`` are repaired (counted as
    fixed); anything else that does not read as ``D<session>:<turn>`` is returned as unparsable.
    """
    ids: list[str] = []
    fixed = 0
    bad: list[str] = []
    for item in raw:
        parts = [p for p in re.split(r"[;,\s]+", str(item)) if p]
        if len(parts) > 1:
            fixed += 1
        for part in parts:
            m = _DIA_ID.match(part)
            if not m:
                bad.append(part)
                continue
            norm = f"D{int(m.group(1))}:{int(m.group(2))}"
            if norm != part and len(parts) == 1:
                fixed += 1
            if norm not in ids:
                ids.append(norm)
    return ids, fixed, bad


def _sessions(conv: Mapping[str, Any]) -> list[tuple[int, list[Mapping[str, Any]], str]]:
    found = []
    for key, value in conv.items():
        m = _SESSION_KEY.match(key)
        if m and isinstance(value, list):
            found.append((int(m.group(1)), value, str(conv.get(f"{key}_date_time", ""))))
    return sorted(found, key=lambda item: item[0])


def _conversation(sample: Mapping[str, Any]) -> tuple[Conversation, int, int, list[str]]:
    sample_id = str(sample["sample_id"])
    conv = sample["conversation"]
    episodes: list[Episode] = []
    for number, turns, date_text in _sessions(conv):
        start = parse_session_date(date_text)
        for i, turn in enumerate(turns):
            ref, _, _ = normalise_evidence([turn.get("dia_id", "")])
            episodes.append(
                Episode(
                    speaker=str(turn["speaker"]),
                    text=str(turn.get("text", "")),
                    at=start + i * _TURN_STEP,
                    session_id=f"{sample_id}/session_{number}",
                    ref=ref[0] if ref else str(turn.get("dia_id")),
                    caption=str(turn["blip_caption"]) if turn.get("blip_caption") else None,
                )
            )
    known = {e.ref for e in episodes}
    questions: list[Question] = []
    fixed_total, skipped = 0, 0
    examples: list[str] = []
    for qa in sample.get("qa", []):
        ids, fixed, bad = normalise_evidence(qa.get("evidence") or [])
        unknown = [i for i in ids if i not in known]
        fixed_total += fixed
        skipped += len(bad) + len(unknown)
        examples.extend(bad + unknown)
        answer, trap = qa.get("answer"), qa.get("adversarial_answer")
        questions.append(
            Question(
                question=str(qa["question"]),
                category=int(qa["category"]),
                evidence=tuple(i for i in ids if i in known),
                answer="" if answer is None else str(answer),
                adversarial_answer="" if trap is None else str(trap),
            )
        )
    speakers = (str(conv.get("speaker_a", "")), str(conv.get("speaker_b", "")))
    result = Conversation(
        sample_id=sample_id, speakers=speakers, episodes=tuple(episodes), questions=tuple(questions)
    )
    return result, fixed_total, skipped, examples


def load_locomo(path: str | Path, *, limit: int | None = None) -> LocomoData:
    """Load a LoCoMo-format JSON file (the first ``limit`` conversations, or all)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of LoCoMo samples")
    convs: list[Conversation] = []
    fixed = skipped = 0
    examples: list[str] = []
    for sample in data[:limit] if limit is not None else data:
        conv, f, s, ex = _conversation(sample)
        convs.append(conv)
        fixed += f
        skipped += s
        examples.extend(ex)
    return LocomoData(
        conversations=tuple(convs),
        skipped_evidence=skipped,
        fixed_evidence=fixed,
        skipped_examples=tuple(examples[:10]),
    )
