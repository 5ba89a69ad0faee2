"""What a bound machine holds, built once when it gets its db (none of the parts knows it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..curation import Curator, ModelJudge
from ..db import Db
from ..feedback import FeedbackStore
from ..stores.decision_log import DecisionLogStore
from ._background import BackgroundRunner
from ._decisions import DecisionBook
from ._jobs import CURATE, EXTRACT, extraction_kind
from ._models import resolve_model
from ._proposals import ProposalBook, approve_proposal_tool
from ._recall import RecallCache, Recaller
from ._service import LearningService
from ._turn import TurnRecorder
from ._worker import Worker

if TYPE_CHECKING:
    from ._machine import LearningMachine

__all__ = ["Parts"]


class Parts:
    """What a bound machine holds; built once, when the machine gets its db."""

    def __init__(self, machine: LearningMachine, db: Db) -> None:
        self.db = db
        registry = machine.registry
        self.recalled = RecallCache()
        self.recaller = Recaller(
            registry=registry, embedder=machine.embedder, context_budget=machine.context_budget
        )
        judge = machine.dedup_judge
        curator = Curator(
            db=db,
            embedder=machine.embedder,
            judge=ModelJudge(resolve_model(judge)) if judge is not None else None,
        )
        self.proposals = ProposalBook(db=db, registry=registry)
        self.service = LearningService(
            db=db, embedder=machine.embedder, proposals=self.proposals, curator=curator
        )
        self.worker = Worker(
            db=db,
            registry=registry,
            model=resolve_model(machine.model) if machine.model is not None else None,
            settings=machine.settings,
            curate=lambda job: curator.acurate(**dict(job.options)),
            recalled=self.recalled,
            usage=machine.usage,
            kinds=(CURATE, EXTRACT, extraction_kind(registry.route())),
            embed=self.recaller.embed,
        )
        self.runner = BackgroundRunner(
            worker=self.worker,
            retry_backoff=machine.settings.retry_backoff,
            drain_on_exit=machine.drain_on_exit,
        )
        self.runner.enabled = machine.background
        self.recorder = TurnRecorder(
            db=db,
            registry=registry,
            schedule=machine.schedule,
            max_attempts=machine.max_attempts,
            recalled=self.recalled,
            on_enqueued=self.runner.notify,
        )
        self.approve_tool = approve_proposal_tool(self.proposals)
        log = registry.get("decision_log")
        signals = registry.get("feedback")
        self.decisions = (
            DecisionBook(
                store=log.store,
                feedback=signals.store
                if signals and isinstance(signals.store, FeedbackStore)
                else None,
            )
            if log is not None and isinstance(log.store, DecisionLogStore)
            else None
        )
