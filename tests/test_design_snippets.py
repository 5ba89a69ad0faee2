"""The design's own snippets, run as a user copies them (only the model is a scripted one).

Where each snippet comes from:

- The store protocol and the "~50 lines" custom store: Ashpreet Bedi, "Learning Machines:
  Technical Design" (https://www.ashpreetbedi.com/articles/lm-technical-design), section "The
  Learning Protocol": five members, ``learning_type``, ``recall(**context)``,
  ``process(messages, **context)``, ``build_context(data)``, ``get_tools(**context)``. The stored
  copy of that page could be read only up to that section; the ``ProjectContextStore`` below
  follows the shape the design's cookbook gives it (agno ``cookbook/.../09_custom_stores.py``,
  "Test 3: Project Context Store": a ``@dataclass`` subclassing ``LearningStore`` whose
  ``recall`` takes ``project_id``), written in our API.
- The three levels: agno docs, "Learning" cookbook overview, "Configuration Levels"
  (https://docs.agno.com/cookbook/learning/overview: ``learning=True``; "Pick What You Want"
  with flags; full configs), and this project's issue 3, which fixed our spelling of them.
- The namespaces: agno docs, learned-knowledge store ("Scope: Configurable (global, user, or
  custom namespace)") and "Institutional learning"
  (``LearnedKnowledgeConfig(mode=LearningMode.AGENTIC, namespace="global")``); issue 3's
  ``namespace="engineering"`` for a team.

Given where a snippet relies on defaults: a ``db`` (the fixture, both backends) and, for speed,
``HashEmbedder`` instead of the bundled MiniLM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from learning_machines import (
    Agent,
    ChatMessage,
    EntityMemoryConfig,
    LearnedKnowledgeConfig,
    LearningMachine,
    LearningMode,
    LearningStore,
    SessionContextConfig,
    UserProfileConfig,
)
from learning_machines._demo import demo_extraction
from learning_machines.db import Db
from learning_machines.embedders import HashEmbedder
from learning_machines.testing import ScriptedModel


def scripted(**kwargs: Any) -> ScriptedModel:
    """The one change to every snippet: a scripted model instead of a provider's."""
    return ScriptedModel(extraction=demo_extraction, **kwargs)


# --- Level 1: "Dead simple" -------------------------------------------------------------------


def test_level_1_learning_true(db: Db) -> None:
    model = scripted(answers="Noted.")
    agent = Agent(model=model, db=db, learning=True, embedder=HashEmbedder())

    # Session 1
    agent.run("I'm Alex, I prefer concise answers.", user_id="alex@example.com")
    agent.wait_idle()
    # Session 2 - agent remembers
    result = agent.run("What do you know about me?", user_id="alex@example.com")

    assert result.context is not None
    assert "Alex" in result.context.text
    assert "concise answers" in result.context.text


# --- Level 2: "Pick what you want" ------------------------------------------------------------


def test_level_2_flags_per_store(db: Db) -> None:
    agent = Agent(
        model=scripted(answers="Noted."),
        db=db,
        learning=LearningMachine(
            user_profile=True,
            session_context=True,
            learned_knowledge=True,
            entity_memory=True,
            embedder=HashEmbedder(),
        ),
    )
    agent.run("I'm Alex. Acme uses Kafka for events.", user_id="alex", session_id="s1")
    agent.wait_idle()
    result = agent.run("What does Acme use for events?", user_id="alex", session_id="s1")

    assert agent.machine is not None
    assert set(agent.machine.stores) == {
        "user_profile",
        "session_context",
        "learned_knowledge",
        "entity_memory",
    }
    assert result.context is not None
    assert "Kafka" in result.context.text  # entity memory learned it in the background
    assert "Alex" in result.context.text  # so did the user profile


# --- Level 3: "Full control" ------------------------------------------------------------------


def test_level_3_full_configs(db: Db) -> None:
    def tool_calls(prompt: str) -> list[tuple[str, dict[str, Any]]]:
        if prompt.startswith("Call me"):
            return [("update_user_profile", {"preferred_name": "Ali"})]
        if prompt.startswith("Remember"):
            return [("save_learning", {"title": "Pin versions", "learning": "Pin every dep."})]
        return []

    learning = LearningMachine(
        user_profile=UserProfileConfig(mode=LearningMode.AGENTIC),
        session_context=SessionContextConfig(enable_planning=True),
        learned_knowledge=LearnedKnowledgeConfig(
            mode=LearningMode.PROPOSE, namespace="engineering"
        ),
        entity_memory=EntityMemoryConfig(mode=LearningMode.BACKGROUND),
        embedder=HashEmbedder(),
    )
    agent = Agent(model=scripted(answers="Done.", tool_calls=tool_calls), db=db, learning=learning)

    agent.run("Call me Ali.", user_id="alice", session_id="s1")  # AGENTIC: the agent's tool
    proposed = agent.run("Remember: pin every dependency.", user_id="alice", session_id="s1")
    agent.run("Acme uses Terraform.", user_id="alice", session_id="s1")
    agent.wait_idle()
    later = agent.run("What does Acme use? And pin deps?", user_id="alice", session_id="s2")

    assert later.context is not None
    assert "Ali" in later.context.text  # written by update_user_profile, at once
    assert "Terraform" in later.context.text  # entity memory, BACKGROUND
    assert "proposed as" in (proposed.tool_calls[0].result or "")  # PROPOSE: held, not saved
    assert "Pin every dep" not in later.context.text  # unapproved proposals are never recalled
    assert [p.status for p in learning.proposals.list()] == ["pending"]


# --- A store of your own ------------------------------------------------------------------------


@dataclass
class ProjectContextStore(LearningStore):
    """What each project has decided, keyed by ``project_id``, a context key of the caller's."""

    learning_type: str = "project_context"
    decisions: dict[str, list[str]] = field(default_factory=dict)

    def recall(self, project_id: str | None = None, **context: Any) -> list[str]:
        return self.decisions.get(project_id or "", [])

    def process(
        self, messages: Sequence[ChatMessage], project_id: str | None = None, **context: Any
    ) -> None:
        for message in messages:
            if project_id and message.role == "user" and message.content.startswith("Decision:"):
                self.decisions.setdefault(project_id, []).append(message.content[9:].strip())

    def build_context(self, data: list[str]) -> str:
        return "\n".join(f"- {decision}" for decision in data)

    def get_tools(self, project_id: str | None = None, **context: Any) -> list[Callable[..., Any]]:
        def list_project_decisions() -> str:
            """The decisions taken in the current project."""
            return "\n".join(self.decisions.get(project_id or "", [])) or "none"

        return [list_project_decisions]


def test_custom_project_context_store_gets_project_id(db: Db) -> None:
    learning = LearningMachine(
        custom_stores={"project": ProjectContextStore()}, embedder=HashEmbedder()
    )
    agent = Agent(
        model=scripted(answers="ok", tool_calls=[("list_project_decisions", {})]),
        db=db,
        learning=learning,
    )

    agent.run("Decision: ship on Fridays.", user_id="u1", session_id="s1", project_id="apollo")
    agent.wait_idle()
    apollo = agent.run("What did we decide?", user_id="u1", session_id="s1", project_id="apollo")
    zeus = agent.run("What did we decide?", user_id="u1", session_id="s2", project_id="zeus")

    assert apollo.context is not None
    assert "ship on Fridays" in apollo.context.text
    assert apollo.tool_calls[0].result == "ship on Fridays."
    assert zeus.context is not None
    assert "ship on Fridays" not in zeus.context.text
    assert zeus.tool_calls[0].result == "none"


# --- Namespaces: "user" is private, "global" is everyone's, a team name is the team's -----------


def test_namespace_examples(db: Db) -> None:
    def agent_for(namespace: str) -> Agent:
        return Agent(
            model=scripted(answers="Noted."),
            db=db,
            learning=LearningMachine(
                learned_knowledge=LearnedKnowledgeConfig(namespace=namespace),
                embedder=HashEmbedder(),
            ),
        )

    private = agent_for("user")  # private to each user
    everyone = agent_for("global")  # shared with everyone
    engineering = agent_for("engineering")  # shared within a team
    sales = agent_for("sales")
    for agent, lesson in (
        (private, "Lesson learned: my own trick for flaky retries is a jittered backoff."),
        (everyone, "Lesson learned: flaky retries need idempotency keys everywhere."),
        (engineering, "Lesson learned: flaky retries in CI come from shared temp folders."),
    ):
        agent.run(lesson, user_id="alice", session_id="a")
        agent.wait_idle()

    def sees(agent: Agent, user: str) -> str:
        result = agent.run("How do I handle flaky retries?", user_id=user, session_id=user)
        assert result.context is not None
        return result.context.text

    assert "jittered backoff" in sees(private, "alice")
    assert "jittered backoff" not in sees(private, "bob")
    assert "idempotency keys" in sees(everyone, "bob")
    assert "shared temp folders" in sees(engineering, "bob")
    assert "shared temp folders" not in sees(sales, "carol")
