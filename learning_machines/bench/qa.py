"""Answer accuracy on long conversations, judged by a model: ``learning-machines bench qa``.

For each conversation of a LoCoMo or LongMemEval file (see :mod:`._qa_data`):

1. **Ingest** it as one user's memory: every turn through the episodic store's ingestion
   (speakers, session dates, image captions kept), and, with a learning model, every session
   through :meth:`LearningMachine.aprocess` for the other stores (the real extraction path: one
   call per session for all stores).
2. **Recall** for each question through :meth:`LearningMachine.abuild_context`, with a fixed
   token budget for the whole context; the budget is reported and never exceeded.
3. **Answer** with the answer model, from the question and that context only.
4. **Grade** with the judge model, which sees the question, the reference answer and the answer
   under a strict published rubric (:mod:`._qa_grading`). The prescribed "I don't know" is graded
   by rule: right only where the conversation cannot answer.

Every model call is cached on disk (:mod:`._qa_models`), so a rerun costs nothing and an
interrupted run resumes where it stopped. Results go to ``qa.json`` and ``qa.md``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any, Protocol

from pydantic_ai import Agent as PydanticAgent
from pydantic_ai.exceptions import UnexpectedModelBehavior, UserError
from pydantic_ai.models import Model

from .._tokens import estimate_tokens
from ..db import SqliteDb, utcnow
from ..exceptions import ConfigurationError, ModelError
from ..machine import LearningMachine
from ..machine._context import assemble_context
from ..stores import EpisodicMemoryConfig, EpisodicMemoryStore
from ._common import CachedEmbedder, make_embedder, percentile, run_info, write_json
from ._qa_data import QAConversation, QADataset, QAQuestion, load_qa_data
from ._qa_grading import (
    ANSWER_INSTRUCTIONS,
    JUDGE_RUBRIC,
    PROMPT_VERSION,
    Verdict,
    answer_prompt,
    is_dont_know,
    judge_prompt,
)
from ._qa_models import CachingModel, ModelCache, RoleUsage
from ._qa_report import qa_markdown

__all__ = [
    "LEARNING_STORES",
    "QUICK_HISTORIES",
    "QUICK_QUESTIONS",
    "QuestionResult",
    "run_qa",
    "select",
]

logger = logging.getLogger("learning_machines")

#: Stores a learning model can fill besides episodic memory (private to each conversation).
LEARNING_STORES = ("user_profile", "entity_memory", "session_context", "learned_knowledge")
#: Questions of the one conversation a ``--quick`` run asks, spread over the categories.
QUICK_QUESTIONS = 40
#: LongMemEval histories (one question each) a ``--quick`` run asks about.
QUICK_HISTORIES = 5
_LEARNED = re.compile(r"<learned_context>.*?</learned_context>", re.DOTALL)


@dataclass(frozen=True, kw_only=True)
class QuestionResult:
    """One graded question."""

    id: str
    """The question's id (``conv-26#3``, or LongMemEval's ``question_id``)."""
    conversation: str
    """The conversation it was asked about."""
    category: str
    """Its category."""
    question: str
    """The question."""
    reference: str
    """The reference answer (what the judge compared with)."""
    answer: str
    """The answer model's reply."""
    correct: bool
    """The grade."""
    graded_by: str
    """``"judge"``, ``"rule"`` (the prescribed "I don't know") or ``"judge-error"``."""
    reason: str
    """The judge's one-sentence reason (or the rule's)."""
    context_tokens: int
    """Tokens of the context given to the answer model (estimate: characters / 4)."""
    context_ms: float
    """Time to build that context (embedding the question and recall)."""
    answer_prompt_tokens: int
    """Estimated tokens of the whole answer request (instructions, context, question)."""
    judge_prompt_tokens: int
    """Estimated tokens of the judge request (0 when graded by rule)."""


class _Progress(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, note: str) -> None: ...
    def close(self) -> None: ...


class _PlainProgress:
    """Progress as plain lines on stderr, about twenty per run (logs, CI)."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.started = time.perf_counter()

    def start(self, total: int) -> None:
        self.total = total

    def advance(self, note: str) -> None:
        self.done += 1
        step = max(1, self.total // 20)
        if self.done % step == 0 or self.done == self.total:
            seconds = time.perf_counter() - self.started
            print(
                f"bench qa: {self.done}/{self.total} questions, {note}, {seconds:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        return None


class _RichProgress:
    """A rich progress bar on a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._task: Any = None

    def start(self, total: int) -> None:
        self._bar.start()
        self._task = self._bar.add_task("bench qa", total=total)

    def advance(self, note: str) -> None:
        self._bar.update(self._task, advance=1, description=f"bench qa: {note}")

    def close(self) -> None:
        self._bar.stop()


def _progress(show: bool | None) -> _Progress:
    tty = sys.stderr.isatty() if show is None else show
    return _RichProgress() if tty else _PlainProgress()


# --- choosing what to ask ------------------------------------------------------------------------


def _spread(questions: Sequence[QAQuestion], n: int) -> list[QAQuestion]:
    """Up to ``n`` questions taken in turn from each category, in file order."""
    by_category: dict[str, list[QAQuestion]] = {}
    for q in questions:
        by_category.setdefault(q.category, []).append(q)
    picked: list[QAQuestion] = []
    while len(picked) < n and any(by_category.values()):
        for queue in by_category.values():
            if queue and len(picked) < n:
                picked.append(queue.pop(0))
    order = {q.id: i for i, q in enumerate(questions)}
    return sorted(picked, key=lambda q: order[q.id])


def select(
    data: QADataset, *, quick: bool, conversations: int | None, questions: int | None
) -> list[QAConversation]:
    """The conversations and questions a run asks (all of them unless limited).

    LoCoMo: ``quick`` is one conversation and 40 questions; ``questions`` is per conversation.
    LongMemEval has one question per history: ``quick`` is 5 of them, ``questions`` the number
    of histories; both spread over the question types.
    """
    convs = list(data.conversations)
    if data.format == "longmemeval":
        if quick or questions:
            first = {c.questions[0].id: c for c in convs}
            keep = _spread([c.questions[0] for c in convs], questions or QUICK_HISTORIES)
            convs = [first[q.id] for q in keep]
        return convs[:conversations] if conversations is not None else convs
    if quick:
        conversations = conversations or 1
        questions = questions or QUICK_QUESTIONS
    if conversations is not None:
        convs = convs[:conversations]
    if questions is not None:
        convs = [
            QAConversation(
                id=c.id,
                speakers=c.speakers,
                episodes=c.episodes,
                questions=tuple(_spread(c.questions, questions)),
            )
            for c in convs
        ]
    return convs


# --- one conversation ----------------------------------------------------------------------------


@dataclass
class _Run:
    budget: int
    answerer: PydanticAgent[None, str]
    judge: PydanticAgent[None, Verdict]
    learn_model: Model | None
    stores: tuple[str, ...]
    embedder: CachedEmbedder
    concurrency: int
    resume: str
    """How to go on after a failure (the cache keeps every finished call)."""
    results: list[QuestionResult] = field(default_factory=list)
    learning_failures: int = 0


def _data_budget(budget: int, stores: int) -> int:
    # build_context's budget covers the whole block (wrapper and guidance included); refuse one
    # that leaves no room for data.
    wrapper, _ = assemble_context(
        blocks={"x": "x"}, guidance={}, budgets={"x": None}, total_budget=None
    )
    overhead = estimate_tokens(wrapper) + stores
    if budget <= overhead:
        raise ConfigurationError(f"--budget {budget} is too small: use more than {overhead}")
    return budget


def _machine(db: SqliteDb, run: _Run, *, learning: bool) -> LearningMachine:
    stores: dict[str, Any] = {name: True for name in run.stores}
    if not learning:
        stores["episodic_memory"] = EpisodicMemoryConfig(
            limit=max(5, run.budget // 20), max_tokens=run.budget
        )
    return LearningMachine(
        db=db,
        model=run.learn_model,
        embedder=run.embedder,
        context_budget=_data_budget(run.budget, len(stores)),
        background=False,
        curate_every_turns=None,
        # A session whose extraction keeps failing is parked after a few seconds, not minutes.
        max_attempts=3,
        retry_backoff=1.0,
        **stores,
    )


def _role(conv: QAConversation, speaker: str) -> str:
    if speaker in ("user", "assistant"):
        return speaker
    return "user" if conv.speakers and speaker == conv.speakers[0] else "assistant"


async def _learn(conv: QAConversation, learner: LearningMachine) -> int:
    """Each session through the real learning loop; returns the work items that failed."""
    named = conv.speakers != ("user", "assistant")
    for session_id, turns in groupby(conv.episodes, key=lambda e: e.session_id):
        episodes = list(turns)
        messages = [
            {
                "role": _role(conv, e.speaker),
                "content": f"{e.speaker}: {e.full_text}" if named else e.full_text,
            }
            for e in episodes
        ]
        await learner.aprocess(
            messages, user_id=conv.id, session_id=session_id or conv.id, now=episodes[0].at
        )
        # One session at a time: what is learned next depends on what is known, and a rerun
        # must send the same requests to find them in the cache.
        await learner.await_idle(timeout=None, raise_on_failure=False)
    failed = await learner.service.afailures(limit=None)
    for work in failed:
        logger.warning("bench qa: learning failed for %s: %s", conv.id, work.last_error)
    return len(failed)


async def _ask(
    conv: QAConversation, q: QAQuestion, machine: LearningMachine, run: _Run
) -> QuestionResult:
    start = time.perf_counter()
    ctx = await machine.abuild_context(
        message=q.question,
        user_id=conv.id,
        session_id=f"{conv.id}/questions",
        now=q.asked_at or utcnow(),
    )
    context_ms = (time.perf_counter() - start) * 1000
    # Only the recalled data: the stores' tool guidance names tools the answer model lacks.
    found = _LEARNED.search(ctx.text)
    context = found.group(0) if found else ""
    prompt = answer_prompt(conv, q, context)
    try:
        answer = (await run.answerer.run(prompt)).output.strip()
    except Exception as exc:
        raise ModelError(f"the answer model failed on {q.id}: {exc}. {run.resume}") from exc
    judge_tokens = 0
    if is_dont_know(answer):
        correct, graded_by = q.abstain, "rule"
        reason = "prescribed 'I don't know': right only when the conversation cannot answer"
    else:
        text = judge_prompt(q, answer)
        judge_tokens = estimate_tokens(JUDGE_RUBRIC) + estimate_tokens(text)
        try:
            verdict = (await run.judge.run(text)).output
            correct, graded_by, reason = verdict.verdict == "CORRECT", "judge", verdict.reason
        except UnexpectedModelBehavior as exc:
            # Cached, so it would fail the same way on every rerun: counted as wrong, reported.
            logger.warning("bench qa: the judge's output for %s did not validate: %s", q.id, exc)
            correct, graded_by, reason = False, "judge-error", str(exc)
        except Exception as exc:
            raise ModelError(f"the judge model failed on {q.id}: {exc}. {run.resume}") from exc
    return QuestionResult(
        id=q.id,
        conversation=conv.id,
        category=q.category,
        question=q.question,
        reference=q.answer,
        answer=answer,
        correct=correct,
        graded_by=graded_by,
        reason=reason,
        context_tokens=estimate_tokens(context),
        context_ms=round(context_ms, 2),
        answer_prompt_tokens=estimate_tokens(ANSWER_INSTRUCTIONS) + estimate_tokens(prompt),
        judge_prompt_tokens=judge_tokens,
    )


async def _conversation(
    conv: QAConversation, run: _Run, db: SqliteDb, progress: _Progress
) -> float:
    machine = _machine(db, run, learning=False)
    started = time.perf_counter()
    episodic = machine.stores["episodic_memory"]
    assert isinstance(episodic, EpisodicMemoryStore)
    await episodic.aadd_episodes(conv.episodes, user_id=conv.id)
    if run.learn_model is not None and run.stores:
        run.learning_failures += await _learn(conv, _machine(db, run, learning=True))
    ingest = time.perf_counter() - started
    limit = asyncio.Semaphore(run.concurrency)

    async def one(q: QAQuestion) -> QuestionResult:
        async with limit:
            result = await _ask(conv, q, machine, run)
        progress.advance(q.id)
        return result

    run.results.extend(await asyncio.gather(*(one(q) for q in conv.questions)))
    return ingest


async def _conversations(
    convs: Sequence[QAConversation], run: _Run, folder: Path, progress: _Progress
) -> list[float]:
    """Every conversation in one event loop (provider clients belong to the loop they start in)."""
    ingest = []
    for index, conv in enumerate(convs):
        db = SqliteDb(folder / f"conversation-{index}.db")
        try:
            ingest.append(await _conversation(conv, run, db, progress))
        finally:
            db.close()
    return ingest


# --- the run -------------------------------------------------------------------------------------


def _share(results: Sequence[QuestionResult]) -> dict[str, Any]:
    n = len(results)
    right = sum(r.correct for r in results)
    return {"n": n, "correct": right, "accuracy": round(right / n, 4) if n else 0.0}


def _usage(usage: RoleUsage) -> dict[str, Any]:
    data = {k: v for k, v in asdict(usage).items() if k != "seconds"}
    data["latency_ms"] = {
        "p50": round(percentile(usage.seconds, 50) * 1000, 1),
        "p95": round(percentile(usage.seconds, 95) * 1000, 1),
    }
    return data


def _model(value: Model | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return f"{value.system}:{value.model_name}"


def run_qa(
    data_path: str | Path,
    *,
    model: Model | str,
    judge: Model | str,
    out_dir: str | Path = "bench-results",
    budget: int = 2000,
    quick: bool = False,
    conversations: int | None = None,
    questions: int | None = None,
    learn_model: Model | str | None = None,
    stores: Sequence[str] = ("user_profile", "entity_memory"),
    embedder: str = "minilm",
    concurrency: int = 4,
    cache: str | Path | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Run the QA benchmark on a LoCoMo or LongMemEval file; write and return the results.

    Args:
        data_path: A LoCoMo-format or LongMemEval-format JSON file.
        model: The answer model (``"provider:model"``, ``"test"``, or a pydantic-ai ``Model``).
        judge: The judge model (may differ from ``model``).
        out_dir: Where ``qa.json`` and ``qa.md`` are written (and the cache, by default).
        budget: Token budget of the whole context given to the answer model.
        quick: One conversation and 40 questions spread over the categories.
        conversations: Ask about the first this many conversations only.
        questions: Ask this many questions per conversation, spread over the categories.
        learn_model: A model for the other stores (``stores``); ``None`` ingests episodes only.
        stores: Stores filled by ``learn_model``, besides episodic memory.
        embedder: ``"minilm"`` (the default model) or ``"hash"`` (tests).
        concurrency: Questions of one conversation in flight at once.
        cache: The model-call cache file (default ``out_dir/qa-cache.jsonl``).
        progress: Show a progress bar (``None``: when stderr is a terminal; plain lines else).

    """
    unknown = sorted(set(stores) - set(LEARNING_STORES))
    if unknown:
        raise ConfigurationError(
            f"unknown store(s) {', '.join(unknown)}; choose from {', '.join(LEARNING_STORES)}"
        )
    if concurrency < 1:
        raise ConfigurationError("--concurrency must be at least 1")
    data = load_qa_data(data_path)
    convs = select(data, quick=quick, conversations=conversations, questions=questions)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_cache = ModelCache(cache if cache is not None else out / "qa-cache.jsonl")
    usage = {"answer": RoleUsage(), "judge": RoleUsage(), "learning": RoleUsage()}

    def cached(value: Model | str, option: str, role: str) -> CachingModel:
        try:
            return CachingModel(value, cache=model_cache, usage=usage[role])
        except UserError as exc:  # unknown provider, missing key or SDK: say which option
            raise ConfigurationError(f"{option} {value!r}: {exc}") from exc

    answer_model = cached(model, "--model", "answer")
    judge_model = cached(judge, "--judge", "judge")
    cached_learner = (
        cached(learn_model, "--learn-model", "learning") if learn_model is not None else None
    )
    run = _Run(
        budget=budget,
        answerer=PydanticAgent(
            answer_model,
            instructions=ANSWER_INSTRUCTIONS,
            name="qa-answer",
        ),
        judge=PydanticAgent(
            judge_model,
            output_type=Verdict,
            instructions=JUDGE_RUBRIC,
            name="qa-judge",
            retries=2,
        ),
        learn_model=cached_learner,
        stores=tuple(stores) if learn_model is not None else (),
        embedder=make_embedder(embedder),
        concurrency=concurrency,
        resume=f"Finished model calls are kept in {model_cache.path}: run the same command "
        "again to resume where this run stopped",
    )
    _data_budget(budget, len(run.stores) + 1)  # refuse a budget too small before any work
    bar = _progress(progress)
    bar.start(sum(len(c.questions) for c in convs))
    started = time.perf_counter()
    ingest: list[float] = []
    try:
        with tempfile.TemporaryDirectory(prefix="lm-qa-") as tmp:
            ingest = asyncio.run(_conversations(convs, run, Path(tmp), bar))
    finally:
        bar.close()
        run.embedder.save()
    results = run.results
    categories = [c for c in data.categories if any(r.category == c for r in results)]
    context = [r.context_tokens for r in results]
    n_conv = max(1, len(convs))
    total_tokens = sum(u.all_input_tokens + u.all_output_tokens for u in usage.values())
    report: dict[str, Any] = {
        "benchmark": "qa",
        "run": run_info(
            data=str(data_path),
            format=data.format,
            quick=quick,
            model=_model(model),
            judge=_model(judge),
            learn_model=_model(learn_model),
            stores=["episodic_memory", *run.stores],
            embedder=run.embedder.name,
            budget_tokens=budget,
            prompt_version=PROMPT_VERSION,
            seconds=round(time.perf_counter() - started, 1),
        ),
        "data": {
            "conversations": len(convs),
            "turns": sum(len(c.episodes) for c in convs),
            "questions": len(results),
            "questions_in_file": sum(len(c.questions) for c in data.conversations),
        },
        "accuracy": {
            "overall": _share(results),
            "by_category": {c: _share([r for r in results if r.category == c]) for c in categories},
        },
        "graded_by": {
            kind: sum(r.graded_by == kind for r in results)
            for kind in ("judge", "rule", "judge-error")
        },
        "context_tokens": {
            "budget": budget,
            "mean": round(sum(context) / len(context), 1) if context else 0.0,
            "p50": percentile(context, 50),
            "p95": percentile(context, 95),
            "max": max(context, default=0),
        },
        "estimated_prompt_tokens_per_question": {
            "answer": round(sum(r.answer_prompt_tokens for r in results) / max(1, len(results))),
            "judge": round(sum(r.judge_prompt_tokens for r in results) / max(1, len(results))),
        },
        "models": {role: _usage(u) for role, u in usage.items()},
        "tokens_per_conversation": round(total_tokens / n_conv),
        "latency_ms": {
            "context_p50": round(percentile([r.context_ms for r in results], 50), 1),
            "context_p95": round(percentile([r.context_ms for r in results], 95), 1),
            "ingest_per_conversation_p50": round(percentile(ingest, 50) * 1000, 1),
        },
        "learning_failures": run.learning_failures,
        "cache": {"path": str(model_cache.path), "entries": len(model_cache)},
        "questions": [asdict(r) for r in sorted(results, key=lambda r: r.id)],
    }
    write_json(out / "qa.json", report)
    (out / "qa.md").write_text(qa_markdown(report), encoding="utf-8")
    return report
