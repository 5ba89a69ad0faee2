"""Every tool of every built-in store, in every mode it supports, is a valid pydantic-ai tool."""

from __future__ import annotations

import inspect

import pytest
from pydantic_ai import Tool

from learning_machines._modes import LearningMode
from learning_machines.stores import (
    EntityMemoryConfig,
    EpisodicMemoryConfig,
    LearnedKnowledgeConfig,
    SessionContextConfig,
    UserProfileConfig,
)

from .conftest import ctx

CONFIGS = [
    UserProfileConfig,
    SessionContextConfig,
    LearnedKnowledgeConfig,
    EntityMemoryConfig,
    EpisodicMemoryConfig,
]
READ_ONLY = {"search_learnings", "search_entities", "lookup_entity", "search_episodes"}


def cases():
    for config in CONFIGS:
        for mode in LearningMode:
            store_cls = type(config().create_store())
            if mode in store_cls.supported_modes:
                yield pytest.param(config, mode, id=f"{config.__name__}-{mode.value}")


@pytest.mark.parametrize(("config", "mode"), list(cases()))
def test_tools_are_valid_and_documented(bind, config, mode):
    store = bind(config(mode=mode).create_store())
    tools = store.get_tools(**ctx())
    names = {t.__name__ for t in tools}
    if mode is LearningMode.BACKGROUND:
        assert names <= READ_ONLY, "no write tools in BACKGROUND"
    for fn in tools:
        definition = Tool(fn, require_parameter_descriptions=True).tool_def
        assert definition.description, fn.__name__
        assert "user_id" not in definition.parameters_json_schema["properties"]
        assert "namespace" not in definition.parameters_json_schema["properties"]
    guidance = store.guidance(**ctx())
    for name in names - READ_ONLY:
        assert name in guidance, f"guidance of {config.__name__} does not mention {name}"


def test_public_tool_names(bind):
    profile = bind(UserProfileConfig(mode=LearningMode.AGENTIC).create_store())
    knowledge = bind(LearnedKnowledgeConfig(mode=LearningMode.AGENTIC).create_store())
    assert [t.__name__ for t in profile.get_tools(**ctx())] == ["update_user_profile"]
    assert [t.__name__ for t in knowledge.get_tools(**ctx())] == [
        "search_learnings",
        "save_learning",
    ]


@pytest.mark.parametrize(("config", "mode"), list(cases()))
def test_tool_signatures_show_the_real_defaults(bind, config, mode):
    # Frameworks read defaults off the signature; a list field's default is an empty list.
    store = bind(config(mode=mode).create_store())
    for fn in store.get_tools(**ctx()):
        for param in inspect.signature(fn).parameters.values():
            assert "PydanticUndefined" not in repr(param.default), f"{fn.__name__}.{param.name}"
