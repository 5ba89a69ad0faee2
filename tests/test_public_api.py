"""The public surface: what the README and docs name exists, is exported, and is documented."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = [
    "learning_machines",
    "learning_machines.db",
    "learning_machines.embedders",
    "learning_machines.stores",
    "learning_machines.machine",
    "learning_machines.curation",
    "learning_machines.feedback",
    "learning_machines.exceptions",
    "learning_machines.testing",
]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_exported_name_exists_and_has_a_docstring(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__, f"{module_name} has no module docstring"
    exported = module.__all__
    assert len(exported) == len(set(exported)), "duplicates in __all__"
    for name in exported:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{module_name}.{name} has no docstring"


def test_readme_imports_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    imports = re.findall(
        r"^from (learning_machines[\w.]*) import (?:\(([^)]*)\)|([\w, ]+)$)", readme, re.M
    )
    assert imports, "the README shows imports"
    for module_name, grouped, inline in imports:
        module = importlib.import_module(module_name)
        for name in (n.strip() for n in (grouped or inline).replace("\n", " ").split(",")):
            if name:
                assert name in module.__all__, f"README imports {name} from {module_name}"


def test_seed_api_names_from_the_issue() -> None:
    from learning_machines import (  # noqa: F401
        Agent,
        EntityMemoryConfig,
        LearnedKnowledgeConfig,
        LearningMachine,
        LearningMode,
        LearningStore,
        SessionContextConfig,
        UserProfileConfig,
    )
    from learning_machines.db import PostgresDb, SqliteDb  # noqa: F401

    assert {m.name for m in LearningMode} == {"BACKGROUND", "AGENTIC", "PROPOSE", "HITL"}
    members = {
        name for name in dir(LearningStore) if not name.startswith("_") and name not in {"register"}
    }
    assert members == {"learning_type", "recall", "process", "build_context", "get_tools"}


def test_store_configs_are_importable_by_their_bare_names() -> None:
    """The design writes ``LearnedKnowledgeConfig(...)`` next to ``LearningMachine``: one import."""
    import learning_machines
    import learning_machines.stores as stores

    for name in (
        "UserProfileConfig",
        "SessionContextConfig",
        "LearnedKnowledgeConfig",
        "EntityMemoryConfig",
        "EpisodicMemoryConfig",
        "DecisionLogConfig",
    ):
        assert name in learning_machines.__all__, name
        assert getattr(learning_machines, name) is getattr(stores, name), name
