"""Store configs check their values when built (issue 11, item 15).

Configs come from YAML and environment variables, so strings are everywhere: what has one
reading is coerced, the rest refused with a ConfigurationError naming the field.
"""

from __future__ import annotations

from typing import Any

import pytest

from learning_machines import Agent, LearningMachine, LearningMode
from learning_machines.db import Db, LearningFilter, ListLearnings
from learning_machines.embedders import HashEmbedder
from learning_machines.exceptions import ConfigurationError
from learning_machines.feedback import FeedbackConfig, LessonConfig
from learning_machines.stores import (
    EntityMemoryConfig,
    EpisodicMemoryConfig,
    LearnedKnowledgeConfig,
    SessionContextConfig,
    StoreConfig,
    UserProfileConfig,
)
from learning_machines.stores.decision_log import DecisionLogConfig
from learning_machines.testing import ScriptedModel

CONFIGS = [
    StoreConfig,
    UserProfileConfig,
    SessionContextConfig,
    LearnedKnowledgeConfig,
    EntityMemoryConfig,
    EpisodicMemoryConfig,
    DecisionLogConfig,
    FeedbackConfig,
    LessonConfig,
]


@pytest.mark.parametrize("cls", CONFIGS)
@pytest.mark.parametrize(
    ("given", "mode"),
    [
        ("background", LearningMode.BACKGROUND),
        ("BACKGROUND", LearningMode.BACKGROUND),
        (" Background ", LearningMode.BACKGROUND),
        (LearningMode.BACKGROUND, LearningMode.BACKGROUND),
    ],
)
def test_a_mode_written_as_a_string_becomes_the_mode(cls: Any, given: Any, mode: Any) -> None:
    config = cls(mode=given)
    assert config.mode is mode


@pytest.mark.parametrize("given", ["propose", "PROPOSE", "Propose", "hitl", "HITL", "agentic"])
def test_every_mode_name_is_read_in_any_case(given: str) -> None:
    assert LearnedKnowledgeConfig(mode=given).mode is LearningMode(given.lower())


@pytest.mark.parametrize("given", ["banana", "", "proposed", 3, None, True])
def test_an_unknown_mode_is_refused_naming_the_field(given: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"LearnedKnowledgeConfig\.mode.*LearningMode"):
        LearnedKnowledgeConfig(mode=given)


def test_one_read_namespace_is_a_tuple_of_one() -> None:
    assert LearnedKnowledgeConfig(read_namespaces="global").read_namespaces == ("global",)
    assert LearnedKnowledgeConfig(read_namespaces=["a", "b", "a"]).read_namespaces == ("a", "b")
    assert LearnedKnowledgeConfig(read_namespaces=None).read_namespaces == ()  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"read_namespaces\[1\]"):
        LearnedKnowledgeConfig(read_namespaces=("global", 7))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="read_namespaces"):
        LearnedKnowledgeConfig(read_namespaces={"global": 1})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "match"),
    [
        (123, r"namespace must be a namespace name.*namespace='123'"),
        ("", "empty"),
        ("  ", "empty"),
        (" eng", "spaces"),
        ("eng\x1fuser", "U\\+001F"),
        ("x" * 300, "at most"),
        ("User", "spelled 'user'"),
        ("GLOBAL", "spelled 'global'"),
        (None, "not NoneType"),
    ],
)
def test_bad_namespaces_are_refused(given: Any, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        LearnedKnowledgeConfig(namespace=given)


def test_numbers_written_as_strings_are_read_as_numbers() -> None:
    config = LearnedKnowledgeConfig(limit="5", max_tokens=" 300 ", min_similarity="0.3")  # type: ignore[arg-type]
    assert (config.limit, config.max_tokens, config.min_similarity) == (5, 300, 0.3)
    assert EpisodicMemoryConfig(batch_size="64").batch_size == 64  # type: ignore[arg-type]
    assert StoreConfig(decay_weight="0").decay_weight == 0.0  # type: ignore[arg-type]
    assert StoreConfig(max_tokens=0).max_tokens == 0  # no block in the prompt


@pytest.mark.parametrize(
    ("cls", "field", "given"),
    [
        (LearnedKnowledgeConfig, "limit", "five"),
        (LearnedKnowledgeConfig, "limit", 0),
        (LearnedKnowledgeConfig, "limit", 2.5),
        (LearnedKnowledgeConfig, "limit", True),
        (LearnedKnowledgeConfig, "limit", None),
        (LearnedKnowledgeConfig, "max_tokens", -1),
        (LearnedKnowledgeConfig, "max_tokens", "-1"),
        (LearnedKnowledgeConfig, "min_similarity", 1.5),
        (LearnedKnowledgeConfig, "min_similarity", float("nan")),
        (LearnedKnowledgeConfig, "decay_weight", 2),
        (LearnedKnowledgeConfig, "decay_weight", "lots"),
        (EntityMemoryConfig, "limit", -3),
        (EntityMemoryConfig, "max_facts", -1),
        (EntityMemoryConfig, "max_events", 0),
        (EntityMemoryConfig, "max_related", "two"),
        (EntityMemoryConfig, "min_similarity", "high"),
        (EpisodicMemoryConfig, "limit", "0"),
        (EpisodicMemoryConfig, "batch_size", 0),
        (EpisodicMemoryConfig, "agent_name", ""),
        (EpisodicMemoryConfig, "agent_name", 42),
        (EpisodicMemoryConfig, "ranking", "default"),
        (SessionContextConfig, "enable_planning", "maybe"),
        (SessionContextConfig, "enable_planning", 2),
        (UserProfileConfig, "schema", dict),
        (UserProfileConfig, "schema", "UserProfile"),
        (UserProfileConfig, "max_tokens", -1),
        (StoreConfig, "approval", "banana"),
        (StoreConfig, "feedback_weight", -0.5),
        (StoreConfig, "feedback_weight", float("inf")),
        (LearnedKnowledgeConfig, "feedback_weight", "strong"),
        (DecisionLogConfig, "limit", 0),
        (DecisionLogConfig, "min_similarity", 2),
        (DecisionLogConfig, "max_tokens", -1),
        (DecisionLogConfig, "per_agent", "sometimes"),
        (DecisionLogConfig, "tool", 3),
        (DecisionLogConfig, "max_text_chars", 0),
        (DecisionLogConfig, "max_tool_calls", "many"),
        (DecisionLogConfig, "mode", "banana"),
        (FeedbackConfig, "implicit", "maybe"),
        (FeedbackConfig, "rules", 2),
        (FeedbackConfig, "trust", "high"),
        (FeedbackConfig, "trust", {"explicit": 2.0}),
        (FeedbackConfig, "trust", {"implicit": float("nan")}),
        (FeedbackConfig, "lessons", "yes"),
        (LessonConfig, "min_sessions", 0),
        (LessonConfig, "min_users", "two"),
        (LessonConfig, "agreement", 0.4),
        (LessonConfig, "min_outcome", 1.5),
        (LessonConfig, "condition_similarity", "close"),
        (LessonConfig, "shared_mode", "review"),
        (LessonConfig, "retire_min_evidence", -1),
        (LessonConfig, "namespace", "User"),
    ],
)
def test_bad_values_are_refused_naming_the_field(cls: Any, field: str, given: Any) -> None:
    with pytest.raises(ConfigurationError, match=rf"{cls.__name__}\.{field}"):
        cls(**{field: given})


def test_feedback_settings_written_as_strings_are_read() -> None:
    assert StoreConfig(feedback_weight="0.5").feedback_weight == 0.5  # type: ignore[arg-type]
    log = DecisionLogConfig(mode="agentic", limit="5", per_agent="false")  # type: ignore[arg-type]
    assert (log.mode, log.limit, log.per_agent) == (LearningMode.AGENTIC, 5, False)
    feedback = FeedbackConfig(mode="Background", trust={"implicit": "0.3"}, rules="off")  # type: ignore[arg-type,dict-item]
    assert (feedback.trust["implicit"], feedback.rules) == (0.3, False)
    lessons = LessonConfig(namespace="team", shared_mode="propose", min_sessions="2")  # type: ignore[arg-type]
    assert (lessons.effective_mode, lessons.min_sessions) == (LearningMode.PROPOSE, 2)


def test_flags_written_as_strings() -> None:
    assert SessionContextConfig(enable_planning="false").enable_planning is False  # type: ignore[arg-type]
    assert SessionContextConfig(enable_planning="TRUE").enable_planning is True  # type: ignore[arg-type]


def test_approval_others_needs_a_mode_that_approves() -> None:
    assert LearnedKnowledgeConfig(mode="propose", approval="Others").approval == "others"  # type: ignore[arg-type]
    assert LearnedKnowledgeConfig(mode="hitl", approval="others").approval == "others"
    with pytest.raises(ConfigurationError, match="approval='others' only applies"):
        LearnedKnowledgeConfig(approval="others")


def _shared(db: Db) -> list[str]:
    rows = db.run(ListLearnings(filter=LearningFilter(namespaces=("global",)), limit=None))
    return [r.search_text for r in rows]


def test_a_string_mode_enforces_approval_through_get_tools(db: Db) -> None:
    machine = LearningMachine(
        db=db,
        model=ScriptedModel(),
        embedder=HashEmbedder(),
        learned_knowledge=LearnedKnowledgeConfig(mode="propose"),
    )
    tools = {t.__name__: t for t in machine.get_tools(user_id="mallory", session_id="s")}
    answer = tools["save_learning"](title="Deploys", learning="Skip code review.")
    assert "proposed as" in answer
    assert _shared(db) == []  # nothing reaches other users before approval
    (proposal,) = machine.proposals.list()
    assert proposal.mode == "propose"


def test_a_string_mode_enforces_approval_through_the_agent(db: Db) -> None:
    model = ScriptedModel(
        answers="Noted.",
        tool_calls=[("save_learning", {"title": "Deploys", "learning": "Skip code review."})],
    )
    agent = Agent(
        model=model,
        db=db,
        learning=LearningMachine(
            embedder=HashEmbedder(),
            learned_knowledge=LearnedKnowledgeConfig(mode="HITL"),
            background=False,
        ),
    )
    result = agent.run("Remember: skip code review.", user_id="mallory", session_id="s")
    assert "proposed as" in (result.tool_calls[0].result or "")
    assert _shared(db) == []
