"""What ``bench qa`` asks the answer model and the judge, and the rubric the judge applies.

Pure: prompts are built from typed data, nothing is sent from here. The answer prompt holds the
question and the recalled context only; the reference answer appears in the judge's prompt and
nowhere else. The rubric is strict on purpose (``docs/benchmarks.md`` explains why): the answer
must state the key fact of the reference, vague or hedged answers are wrong, and "I don't know"
is wrong unless the conversation cannot answer the question (LoCoMo's adversarial category,
LongMemEval's abstention questions), where it is the only right answer.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from ._qa_data import QAConversation, QAQuestion

__all__ = [
    "ANSWER_INSTRUCTIONS",
    "DONT_KNOW",
    "JUDGE_RUBRIC",
    "PROMPT_VERSION",
    "Verdict",
    "answer_prompt",
    "is_dont_know",
    "judge_prompt",
]

#: Changes whenever a prompt or the rubric changes, so results of different rubrics never mix.
PROMPT_VERSION = "qa-1"

#: What the answer model says when the context does not hold the answer.
DONT_KNOW = "I don't know."

ANSWER_INSTRUCTIONS = f"""\
You answer a question about earlier conversations, using only the memory excerpts you are \
given. Excerpts are dated; resolve relative dates ("yesterday", "last week") against the date \
of the excerpt and answer with absolute dates. Answer in one short sentence with the specific \
fact asked for: a name, a thing, a number or a date. Do not hedge and do not list alternatives. \
If the excerpts do not contain the answer, reply exactly: {DONT_KNOW}"""

JUDGE_RUBRIC = """\
You grade one answer to a question about earlier conversations, against a reference answer. \
Be strict.

CORRECT only if the answer states the key fact of the reference answer: the same person, \
thing, place, number or date. Paraphrase is fine, and so is a date written another way, as \
long as it names the same date at the precision the reference gives (a reference "May 2023" \
is matched by "7 May 2023"; a reference "7 May 2023" is not matched by "May 2023"). When the \
reference lists several items, the answer must give all of them.

WRONG if the answer misses the key fact or gets it wrong; is vague or hedged so that it \
would fit other answers too; lists several candidates; adds a claim that contradicts the \
reference; or says it does not know.

Exception: when the question is marked UNANSWERABLE, the conversation does not contain the \
answer. Then the answer is CORRECT only if it says it does not know or that the conversation \
does not say, and WRONG if it gives any answer (in particular the tempting wrong answer, when \
one is shown).

Judge the answer's content only, not its style or length."""


class Verdict(BaseModel):
    """The judge's output."""

    reason: str = Field(description="One sentence: which fact decided the grade.")
    verdict: Literal["CORRECT", "WRONG"] = Field(description="CORRECT or WRONG, by the rubric.")


_DONT_KNOW = re.compile(r"^\W*i\s+don'?t\s+know\W*$", re.IGNORECASE)


def is_dont_know(answer: str) -> bool:
    """Whether ``answer`` is the prescribed "I don't know" (and nothing else)."""
    return bool(_DONT_KNOW.match(answer.replace("\u2019", "'")))


def _who(conversation: QAConversation) -> str:
    speakers = [s for s in conversation.speakers if s]
    if conversation.speakers == ("user", "assistant"):
        return (
            "between a user and an AI assistant; questions in the first person ('I', 'my') "
            "are asked by the user"
        )
    if len(speakers) >= 2:
        return "between " + ", ".join(speakers[:-1]) + " and " + speakers[-1]
    return "with " + speakers[0] if speakers else ""


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "unknown"


def answer_prompt(conversation: QAConversation, question: QAQuestion, context: str) -> str:
    """The answer model's user prompt: who talked, when the question is asked, the context."""
    return (
        f"The conversations were {_who(conversation)}.\n"
        f"The question is asked on {_date(question.asked_at)}.\n\n"
        f"Memory excerpts:\n{context.strip() or '(none)'}\n\n"
        f"Question: {question.question}"
    )


def judge_prompt(question: QAQuestion, answer: str) -> str:
    """The judge's user prompt: the question, the reference, the category and the answer."""
    lines = [f"Question: {question.question}"]
    if question.abstain:
        lines.append("UNANSWERABLE: the conversation does not contain the answer.")
        lines.append(f"Note from the data set: {question.answer}")
    else:
        lines.append(f"Reference answer: {question.answer}")
    if question.trap:
        lines.append(f"Tempting wrong answer: {question.trap}")
    lines.append(f"Category: {question.category}")
    lines.append(f"Answer to grade: {answer.strip() or '(empty)'}")
    return "\n".join(lines)
