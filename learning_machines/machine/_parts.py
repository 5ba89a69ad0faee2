"""What a bound machine holds, built once when it gets its db (none of the parts knows it)."""

from __future__ import annotations

from collections.abc import Callable

from pydantic_ai.models import Model

from .._models import resolve_model
from ..curation import Curator, ModelJudge
from ..db import Db
from ..embedders import Embedder
from ..feedback import FeedbackStore
from ..improvement import ImprovementBook, SelfImprovement
from ..stores.decision_log import DecisionLogStore
from ._background import BackgroundRunner
from ._decisions import DecisionBook
from ._jobs import CURATE, EXTRACT, REFLECT, extraction_kind
from ._options import MachineOptions
from ._proposals import ProposalBook, approve_proposal_tool
from ._recall import RecallCache, Recaller
from ._service import LearningService
from ._turn import TurnOpener, TurnRecorder
from ._worker import LearningUsage, Worker

__all__ = ["Parts"]


class Parts:
    """What a bound machine holds; built once, when the machine gets its db.

    ``model`` is asked each time it is needed (the machine's learning model may be set later).
    """

    def __init__(
        self,
        options: MachineOptions,
        *,
        db: Db,
        embedder: Embedder,
        model: Callable[[], Model | str | None],
        dedup_judge: Model | str | None,
        background: bool,
        usage: LearningUsage,
    ) -> None:
        self.db = db
        registry = options.registry
        self.recalled = RecallCache()
        self.recaller = Recaller(
            registry=registry, embedder=embedder, context_budget=options.context_budget
        )
        curator = Curator(
            db=db,
            embedder=embedder,
            judge=ModelJudge(resolve_model(dedup_judge)) if dedup_judge is not None else None,
        )
        self.proposals = ProposalBook(db=db, registry=registry)
        self.service = LearningService(
            db=db, embedder=embedder, proposals=self.proposals, curator=curator
        )
        config = options.improvement
        self.improvement = (
            None
            if config is None
            else SelfImprovement(db=db, config=config, model=model, embedder=embedder)
        )
        self.improvements = None if self.improvement is None else ImprovementBook(self.improvement)
        # A machine without self-improvement never claims a reflection: it waits for one with.
        kinds: tuple[str, ...] = (CURATE, EXTRACT, extraction_kind(registry.route()))
        if self.improvement is not None:
            kinds += (REFLECT,)
        learning_model = model()
        self.worker = Worker(
            db=db,
            registry=registry,
            model=resolve_model(learning_model) if learning_model is not None else None,
            settings=options.settings,
            curate=lambda job: curator.acurate(**dict(job.options)),
            recalled=self.recalled,
            usage=usage,
            kinds=kinds,
            embed=self.recaller.embed,
            reflect=None if self.improvement is None else self.improvement.arun_job,
        )
        self.runner = BackgroundRunner(
            worker=self.worker,
            retry_backoff=options.settings.retry_backoff,
            drain_on_exit=options.drain_on_exit,
        )
        self.runner.enabled = background
        self.recorder = TurnRecorder(
            db=db,
            registry=registry,
            schedule=options.schedule,
            max_attempts=options.max_attempts,
            recalled=self.recalled,
            on_enqueued=self.runner.notify,
            also_due=None if self.improvement is None else self.improvement.after_turn,
        )
        self.opener = TurnOpener(
            db=db,
            registry=registry,
            recaller=self.recaller,
            recorder=self.recorder,
            approve_tool=approve_proposal_tool(self.proposals),
        )
        log = registry.get("decision_log")
        signals = registry.get("feedback")
        self.feedback = (
            signals.store if signals and isinstance(signals.store, FeedbackStore) else None
        )
        self.decisions = (
            DecisionBook(store=log.store, feedback=self.feedback)
            if log is not None and isinstance(log.store, DecisionLogStore)
            else None
        )
