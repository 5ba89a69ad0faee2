"""The combined extraction schema is sent on every call: it is compact, and checks the same."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError

from learning_machines import LearningMachine
from learning_machines.db import SqliteDb
from learning_machines.embedders import HashEmbedder
from learning_machines.machine._extraction import combined_output_type
from learning_machines.machine._schema import compact_schema


def _extractions() -> dict[str, Any]:
    machine = LearningMachine(
        db=SqliteDb(":memory:"),
        embedder=HashEmbedder(),
        background=False,
        user_profile=True,
        session_context=True,
        learned_knowledge=True,
        entity_memory=True,
    )
    context = {"user_id": "u", "session_id": "s", "turn_id": "t", "message": "hi"}

    async def collect() -> dict[str, Any]:
        return {
            name: await slot.extraction(context, {})
            for name, slot in machine.registry.items()
            if slot.describes_extraction
        }

    return asyncio.run(collect())


class Item(BaseModel):
    title: str = Field(description="A property named like a keyword.")
    note: str | None = None
    must: int | None


class Wrapper(BaseModel):
    items: list[Item] = Field(default_factory=list)


def test_compact_schema_drops_noise_and_keeps_meaning() -> None:
    schema = compact_schema(Wrapper.model_json_schema())
    item = schema["properties"]["items"]["items"]
    assert "$defs" not in schema
    assert "$ref" not in json.dumps(schema)
    assert "title" in item["properties"]  # a property called title is data, not a keyword
    assert all("title" not in p for p in item["properties"].values())
    assert item["properties"]["note"] == {"type": "string"}  # optional: null is implied
    assert item["properties"]["must"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert sorted(item["required"]) == ["must", "title"]


def test_a_recursive_schema_is_refused() -> None:
    class Node(BaseModel):
        child: Node | None = None

    with pytest.raises(ValueError, match="recursive"):
        compact_schema(Node.model_json_schema())


def test_the_combined_schema_is_a_third_smaller_and_validates_as_before() -> None:
    extractions = _extractions()
    model = combined_output_type(extractions)
    sent = json.dumps(model.model_json_schema())
    full = json.dumps(model.__mro__[1].model_json_schema())  # what pydantic alone would send
    assert len(sent) < 0.75 * len(full)
    assert set(model.model_json_schema()["properties"]) == set(extractions)

    # Sections may be left out or null; wrong shapes are still refused; unknown keys kept.
    assert model.model_validate({}).user_profile is None
    assert model.model_validate({"user_profile": None, "extra": 1}).model_extra == {"extra": 1}
    with pytest.raises(PydanticValidationError):
        model.model_validate({"learned_knowledge": {"learnings": "not a list"}})
    parsed = model.model_validate({"user_profile": {"name": "Ann", "role": None}})
    assert parsed.user_profile.name == "Ann"


def test_a_store_with_a_recursive_output_keeps_pydantics_schema() -> None:
    from learning_machines import Extraction

    class Node(BaseModel):
        name: str
        children: list[Node] = Field(default_factory=list)

    model = combined_output_type(
        {"tree": Extraction(output_type=Node, instructions="A tree of topics.")}
    )
    assert "$defs" in model.model_json_schema()
    parsed = model.model_validate({"tree": {"name": "a", "children": [{"name": "b"}]}})
    assert parsed.tree.children[0].name == "b"
