"""Question-answering data sets for ``bench qa``: LoCoMo and LongMemEval, in one shape.

Both become :class:`QAConversation` objects: the turns of one memory (one user) as episodes, and
the questions asked about it afterwards. No data is shipped; users pass the file.

- **LoCoMo** (Maharana et al., 2024): a list of samples with ``conversation`` and ``qa`` (see
  :mod:`._locomo`). Every question is kept, all five categories; category 5 ("adversarial") has
  no answer in the conversation, so the right reply is to say so (the few that carry an
  ``answer`` all the same are graded against it).
- **LongMemEval** (Wu et al., ICLR 2025; ``longmemeval_s.json``, ``_m``, ``_oracle``): a list
  of instances, each with its own chat history: ``question_id``, ``question_type``,
  ``question``, ``answer``, ``question_date``, ``haystack_session_ids``, ``haystack_dates``
  (``"2023/05/20 (Sat) 02:21"``) and ``haystack_sessions`` (lists of ``{"role", "content"}``
  turns; ``has_answer`` marks evidence turns). An id ending in ``_abs`` is an abstention
  question: the history does not hold the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..exceptions import ValidationError
from ..stores import Episode
from ._locomo import CATEGORY_NAMES, Conversation, load_locomo

__all__ = [
    "ABSTENTION",
    "QAConversation",
    "QADataset",
    "QAQuestion",
    "from_locomo",
    "load_longmemeval",
    "load_qa_data",
    "parse_longmemeval_date",
]

#: Category of questions whose right answer is "the conversation does not say".
ABSTENTION = "abstention"

_LME_DATE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})(?:\s*\([^)]*\))?\s*(?:(\d{1,2}):(\d{2}))?")
# Turns of one LongMemEval session are spaced like LoCoMo's, so they keep their order in time.
_TURN_STEP = timedelta(seconds=30)


@dataclass(frozen=True, kw_only=True)
class QAQuestion:
    """One question about a conversation, with its reference answer (for the judge only)."""

    id: str
    """Stable id: ``"<conversation>#<index in the file>"`` (LoCoMo) or the ``question_id``."""
    question: str
    """The question, as asked."""
    answer: str
    """The reference answer. For abstention questions, what the data set says instead."""
    category: str
    """``"single-hop"``, ``"temporal"``, … (LoCoMo), the ``question_type`` (LongMemEval), or
    ``"adversarial"`` / ``"abstention"`` for questions the conversation cannot answer."""
    abstain: bool = False
    """The right reply is that the conversation does not say (LoCoMo 5, LongMemEval ``_abs``)."""
    trap: str = ""
    """A tempting wrong answer the data set gives (LoCoMo ``adversarial_answer``)."""
    asked_at: datetime | None = None
    """When the question is asked (LongMemEval ``question_date``; LoCoMo: the last session)."""


@dataclass(frozen=True, kw_only=True)
class QAConversation:
    """One memory to ingest and the questions asked about it."""

    id: str
    """Used as the user id when ingesting, so conversations never see each other."""
    speakers: tuple[str, ...]
    """The participants, as named in the episodes."""
    episodes: tuple[Episode, ...]
    """Every turn in time order, with session ids and times."""
    questions: tuple[QAQuestion, ...]
    """Every question, in file order."""


@dataclass(frozen=True, kw_only=True)
class QADataset:
    """A loaded QA file."""

    format: str
    """``"locomo"`` or ``"longmemeval"``."""
    conversations: tuple[QAConversation, ...]
    """In file order."""
    categories: tuple[str, ...]
    """Every category, in report order."""


def from_locomo(conversations: Sequence[Conversation]) -> QADataset:
    """LoCoMo conversations as a QA data set (every question, all five categories)."""
    out = []
    for conv in conversations:
        asked_at = max((e.at for e in conv.episodes), default=None)
        questions = tuple(
            QAQuestion(
                id=f"{conv.sample_id}#{i}",
                question=q.question,
                answer=q.answer or "Not mentioned in the conversation.",
                category=CATEGORY_NAMES.get(q.category, str(q.category)),
                # A few adversarial questions carry a real answer ("Is Oscar Melanie's pet?" -
                # "No"): those are graded against it, the rest by abstaining.
                abstain=q.category == 5 and not q.answer,
                trap=q.adversarial_answer,
                asked_at=asked_at,
            )
            for i, q in enumerate(conv.questions)
        )
        out.append(
            QAConversation(
                id=conv.sample_id,
                speakers=tuple(s for s in conv.speakers if s),
                episodes=conv.episodes,
                questions=questions,
            )
        )
    return QADataset(
        format="locomo", conversations=tuple(out), categories=tuple(CATEGORY_NAMES.values())
    )


def parse_longmemeval_date(text: str) -> datetime:
    """``"2023/05/20 (Sat) 02:21"`` → an aware UTC datetime (``ValidationError`` if unreadable)."""
    m = _LME_DATE.search(text or "")
    if not m:
        raise ValidationError(
            f"unreadable LongMemEval date {text!r}; expected '2023/05/20 (Sat) 02:21'"
        )
    year, month, day, hour, minute = m.groups()
    return datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), tzinfo=UTC)


def _instance(item: Mapping[str, Any], index: int) -> QAConversation:
    for key in ("question_id", "question", "answer", "haystack_sessions", "haystack_dates"):
        if key not in item:
            raise ValidationError(
                f"LongMemEval instance {index} has no {key!r}; is this longmemeval_s.json, "
                "_m.json or _oracle.json from the LongMemEval release?"
            )
    qid = str(item["question_id"])
    sessions: Sequence[Any] = item["haystack_sessions"]
    dates: Sequence[Any] = item["haystack_dates"]
    if not isinstance(sessions, list) or not all(
        isinstance(session, list) and all(isinstance(turn, Mapping) for turn in session)
        for session in sessions
    ):
        raise ValidationError(
            f"LongMemEval instance {qid}: haystack_sessions must be a list of sessions, each a "
            'list of {"role": ..., "content": ...} turns'
        )
    ids: Sequence[Any] = item.get("haystack_session_ids") or [f"s{n}" for n in range(len(sessions))]
    if not (len(sessions) == len(dates) == len(ids)):
        raise ValidationError(
            f"LongMemEval instance {qid}: {len(sessions)} sessions, {len(dates)} dates and "
            f"{len(ids)} session ids; they must match one to one"
        )
    # The oracle file lists sessions unsorted; episodes are kept in time order.
    order = sorted(range(len(sessions)), key=lambda n: parse_longmemeval_date(str(dates[n])))
    episodes: list[Episode] = []
    for n in order:
        start = parse_longmemeval_date(str(dates[n]))
        for t, turn in enumerate(sessions[n]):
            text = str(turn.get("content", ""))
            if not text.strip():
                continue
            episodes.append(
                Episode(
                    speaker=str(turn.get("role", "user")),
                    text=text,
                    at=start + t * _TURN_STEP,
                    session_id=f"{qid}/{ids[n]}",
                    ref=f"{ids[n]}:{t}",
                )
            )
    abstain = qid.endswith("_abs")
    asked = item.get("question_date")
    question = QAQuestion(
        id=qid,
        question=str(item["question"]),
        answer=str(item["answer"]),
        category=ABSTENTION if abstain else str(item.get("question_type", "unknown")),
        abstain=abstain,
        asked_at=parse_longmemeval_date(str(asked)) if asked else None,
    )
    return QAConversation(
        id=qid, speakers=("user", "assistant"), episodes=tuple(episodes), questions=(question,)
    )


def load_longmemeval(data: Sequence[Any]) -> QADataset:
    """LongMemEval instances (already parsed JSON) as a QA data set: one memory per question."""
    conversations = tuple(_instance(item, i) for i, item in enumerate(data))
    seen: list[str] = []
    for conv in conversations:
        category = conv.questions[0].category
        if category not in seen:
            seen.append(category)
    return QADataset(format="longmemeval", conversations=conversations, categories=tuple(seen))


def load_qa_data(path: str | Path) -> QADataset:
    """Load a LoCoMo or LongMemEval JSON file (the format is recognised from its fields)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{path} is not JSON: {exc}") from exc
    first = data[0] if isinstance(data, list) and data else None
    if isinstance(first, Mapping) and "haystack_sessions" in first:
        return load_longmemeval(data)
    if isinstance(first, Mapping) and "conversation" in first and "qa" in first:
        return from_locomo(load_locomo(path).conversations)
    raise ValidationError(
        f"{path}: not a LoCoMo file (a list of samples with 'conversation' and 'qa') nor a "
        "LongMemEval file (a list of instances with 'haystack_sessions')"
    )
