"""Shared pieces of the decision log and feedback tests: scripted models, tools, a machine."""

from __future__ import annotations

import re
from typing import Any

from pydantic_ai import ModelRetry

from learning_machines import Agent, LearningMachine, LearningMode
from learning_machines.db import Db
from learning_machines.embedders import HashEmbedder
from learning_machines.feedback import FeedbackConfig, LessonConfig
from learning_machines.stores import LearnedKnowledgeConfig
from learning_machines.testing import ScriptedModel

_USER_LINE = re.compile(r"^user: (.*)$", re.M)
NEGATIVE = ("wrong", "broke", "did not work", "doesn't work", "no,")
POSITIVE = ("thanks", "perfect", "great")


def user_text(prompt: str) -> str:
    """The user's message of the turn an extraction prompt shows."""
    turn = prompt.split("# Memory sections", 1)[0]
    found = _USER_LINE.findall(turn)
    return found[-1] if found else ""


def reacting_extraction(prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A rule-following stand-in for the model's part of the extraction call.

    It fills the decision log's section only: a rationale when the turn called tools, and a
    reaction when the user's message says the previous answer was wrong or right.
    """
    if "Section 'decision_log'" not in prompt:
        return {}
    part: dict[str, Any] = {}
    if "This turn's tool calls" in prompt:
        part["rationale"] = "the user asked for it"
    if "Previous turn:" in prompt:
        said = user_text(prompt).lower()
        if any(w in said for w in NEGATIVE):
            part["reaction"] = {"score": -1, "reason": said[:60]}
        elif any(w in said for w in POSITIVE):
            part["reaction"] = {"score": 1, "reason": said[:60]}
    return {"decision_log": part}


def deploy(service: str, strategy: str = "all_at_once") -> str:
    """Deploy a service with a strategy (all_at_once or canary)."""
    if strategy == "all_at_once":
        raise ModelRetry(f"deploying {service} all at once took the site down")
    return f"{service} deployed with {strategy}"


def deploy_calls(prompt: str) -> list[tuple[str, dict[str, Any]]]:
    """Call ``deploy`` for deploy requests: canary when the context says all_at_once failed."""
    match = re.search(r"deploy ([\w-]+)", prompt)
    if not match:
        return []
    return [("deploy", {"service": match.group(1), "strategy": "all_at_once"})]


def scripted(**kwargs: Any) -> ScriptedModel:
    """A scripted model answering ``Done.``, deploying on request, reacting in extraction."""
    kwargs.setdefault("answers", "Done.")
    kwargs.setdefault("tool_calls", deploy_calls)
    kwargs.setdefault("extraction", reacting_extraction)
    return ScriptedModel(**kwargs)


def machine(db: Db, model: ScriptedModel | None = None, **kwargs: Any) -> LearningMachine:
    """A machine with knowledge (AGENTIC, shared), the decision log and feedback."""
    kwargs.setdefault(
        "learned_knowledge", LearnedKnowledgeConfig(mode=LearningMode.AGENTIC, namespace="eng")
    )
    kwargs.setdefault("feedback", FeedbackConfig(lessons=LessonConfig(min_sessions=3)))
    return LearningMachine(
        db=db, model=model or scripted(), embedder=HashEmbedder(), background=False, **kwargs
    )


def agent(db: Db, model: ScriptedModel | None = None, **kwargs: Any) -> tuple[Agent, Any]:
    """An Agent with the deploy tool over :func:`machine`; returns ``(agent, machine)``."""
    model = model or scripted()
    learning = machine(db, model, **kwargs)
    return Agent(model=model, db=db, learning=learning, tools=[deploy]), learning


class TableEmbedder(HashEmbedder):
    """Fixed vectors for texts containing a key; everything else hashed (ranking tests)."""

    def __init__(self, table: dict[str, list[float]], dimensions: int = 8) -> None:
        super().__init__(dimensions)
        self.table = table

    @property
    def name(self) -> str:
        """A name of its own (its vectors are not the hash embedder's)."""
        return f"table-{self.dimensions}"

    def embed(self, texts: Any) -> Any:
        import numpy as np

        out = super().embed(texts)
        for i, text in enumerate(texts):
            for key, vector in self.table.items():
                if key in text:
                    v = np.asarray(vector + [0.0] * (self.dimensions - len(vector)), dtype=float)
                    out[i] = v / np.linalg.norm(v)
        return out
