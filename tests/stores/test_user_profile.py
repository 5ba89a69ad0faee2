from __future__ import annotations

import inspect

import pytest
from pydantic import Field

from learning_machines._modes import LearningMode
from learning_machines._tokens import estimate_tokens
from learning_machines.db import ListLearnings
from learning_machines.exceptions import ConfigurationError
from learning_machines.stores import UserProfile, UserProfileConfig, UserProfileStore

from .conftest import all_rows, approve, ctx, proposals, tool, tool_names


class TeamProfile(UserProfile):
    timezone: str | None = Field(default=None, description="IANA timezone, e.g. Europe/Paris.")


def make(bind, mode=LearningMode.AGENTIC, **kw):
    return bind(UserProfileConfig(mode=mode, **kw).create_store())


async def test_agentic_tool_writes_and_recall_renders(bind):
    store = make(bind)
    update = tool(store, "update_user_profile", **ctx())
    out = await update(
        name="Alice Smith", preferred_name="Al", role="engineer", projects=["apollo"]
    )
    assert out.startswith("saved (")
    await update(projects=["zeus", "Apollo"], communication_style="terse")
    profile = await store.arecall(**ctx())
    assert profile is not None
    assert profile.projects == ["apollo", "zeus"]
    text = store.build_context(profile)
    assert text.splitlines() == [
        "## User profile",
        "- Name: Alice Smith",
        "- Preferred name: Al",
        "- Role: engineer",
        "- Projects: apollo; zeus",
        "- Communication style: terse",
    ]


async def test_provenance_and_single_row(bind, db):
    store = make(bind)
    update = tool(store, "update_user_profile", **ctx())
    await update(name="Alice")
    await update(role="cto")
    rows = await all_rows(db, "user_profile")
    assert len(rows) == 1
    row = rows[0]
    assert row.namespace == "user"
    assert row.user_id == "alice"
    assert row.provenance["user_id"] == "alice"
    assert row.provenance["session_id"] == "s1"
    assert row.provenance["turn_id"] == "t-alice-s1"
    assert row.provenance["mode"] == "agentic"
    assert row.provenance["store"] == "user_profile"


async def test_nothing_to_update_and_no_change(bind):
    store = make(bind)
    update = tool(store, "update_user_profile", **ctx())
    assert await update() == "nothing to update"
    await update(name="Alice")
    assert await update(name="Alice") == "saved (no change)"


def test_tool_signature_follows_schema(bind):
    store = make(bind, schema=TeamProfile)
    update = tool(store, "update_user_profile", **ctx())
    params = inspect.signature(update).parameters
    assert "timezone" in params
    assert "name" in params
    assert all(p.default is None for p in params.values())
    assert "timezone: IANA timezone" in (update.__doc__ or "")


async def test_tool_schema_builds_for_pydantic_ai(bind):
    from pydantic_ai import Tool

    store = make(bind, schema=TeamProfile)
    t = Tool(tool(store, "update_user_profile", **ctx()))
    schema = t.tool_def.parameters_json_schema
    assert "timezone" in schema["properties"]
    assert schema["properties"]["projects"]["description"].startswith("Projects")


async def test_extended_schema_round_trip(bind):
    store = make(bind, schema=TeamProfile)
    await tool(store, "update_user_profile", **ctx())(timezone="Europe/Paris")
    profile = await store.arecall(**ctx())
    assert isinstance(profile, TeamProfile)
    assert profile.timezone == "Europe/Paris"
    assert "- Timezone: Europe/Paris" in store.build_context(profile)


async def test_background_extraction_round_trip(bind):
    store = make(bind, mode=LearningMode.BACKGROUND)
    assert tool_names(store, **ctx()) == []
    spec = store.extraction(**ctx(message="I'm Alice, I lead the data team"))
    assert spec is not None
    assert spec.current_state == "(nothing known yet)"
    assert spec.output_type.model_fields["role"].description
    data = spec.output_type(name="Alice", team="data", role="lead")
    await store.aapply_extraction(data, **ctx())
    profile = await store.arecall(**ctx())
    assert profile is not None
    assert profile.team == "data"
    spec2 = await store.aextraction(**ctx())
    assert spec2 is not None
    assert "- Name: Alice" in spec2.current_state
    [row] = await store.db.arun(ListLearnings(filter=store.read_filter(user_id="alice")))
    assert row.provenance["mode"] == "background"


@pytest.mark.parametrize("mode", [LearningMode.PROPOSE, LearningMode.HITL])
async def test_proposals_are_not_recalled_until_approved(bind, db, mode):
    store = make(bind, mode=mode)
    out = await tool(store, "update_user_profile", **ctx())(name="Alice", role="cto")
    assert "proposed as" in out
    assert "NOT saved" in out
    assert await store.arecall(**ctx()) is None
    assert await all_rows(db, "user_profile") == []
    [proposal] = await proposals(db)
    assert proposal.user_id == "alice"
    assert proposal.mode == mode.value
    assert proposal.namespace == "user"
    assert "name='Alice'" in proposal.summary
    await approve(store, proposal)
    profile = await store.arecall(**ctx())
    assert profile is not None
    assert profile.role == "cto"
    [row] = await all_rows(db, "user_profile")
    assert row.provenance["mode"] == mode.value


async def test_hitl_extraction_becomes_proposal(bind, db):
    store = make(bind, mode=LearningMode.HITL)
    spec = await store.aextraction(**ctx())
    assert spec is not None
    await store.aapply_extraction(spec.output_type(name="Alice"), **ctx())
    assert len(await proposals(db)) == 1
    assert await store.arecall(**ctx()) is None
    assert await make(bind, mode=LearningMode.PROPOSE).aextraction(**ctx()) is None


async def test_budget_respected(bind):
    store = make(bind, max_tokens=20)
    await tool(store, "update_user_profile", **ctx())(
        name="Alice", preferences=[f"preference number {i}" for i in range(40)]
    )
    text = store.build_context(await store.arecall(**ctx()))
    assert estimate_tokens(text) <= 20
    assert text.startswith("## User profile")


def test_guidance_per_mode(bind):
    assert make(bind, mode=LearningMode.BACKGROUND).guidance(**ctx()) == ""
    assert "update_user_profile" in make(bind).guidance(**ctx())
    assert "confirm" in make(bind, mode=LearningMode.PROPOSE).guidance(**ctx())
    assert "reviewer" in make(bind, mode=LearningMode.HITL).guidance(**ctx())


def test_config_errors():
    with pytest.raises(ConfigurationError, match="must stay 'user'"):
        UserProfileStore(UserProfileConfig(namespace="global"))
    with pytest.raises(ConfigurationError, match="subclass"):
        UserProfileStore(UserProfileConfig(schema=dict))  # type: ignore[arg-type]


async def test_needs_user_id(bind):
    store = make(bind)
    with pytest.raises(ConfigurationError, match="user_id"):
        await store.arecall(session_id="s1")
