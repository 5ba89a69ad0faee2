"""Where self-improvement keeps its records: rows of the ``learnings`` table.

They live in a namespace of their own, so history, forget and the database's transactions work
for them as for every row.

- ``agent_profile`` (one per agent): its base instructions and tools, as the ``Agent`` that runs
  it registered them, so any process (a worker, the CLI) can reflect and replay.
- ``instructions_head`` (one per scope): the active version and its rules, moved only by a
  compare-and-set, so two approvals at once never lose one.
- ``instructions_version``: a rule set, its id the address of its content.
- ``instructions_change``: each approval and rollback, with who, what and the evidence.
- ``improvement_proposal``: each proposal, with its evidence, screen and gate results.

The rows hold no user's words: evidence is turn ids with their outcomes (the turns stay in each
user's private decision log), and the screen keeps rules that quote a user from being proposed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from ..curation._forget import ForgetRequest, register_forget_step
from ..db import (
    Change,
    Db,
    GetLearnings,
    Learning,
    LearningFilter,
    ListLearnings,
    Op,
    PatchContent,
    PutLearning,
    stable_id,
    utcnow,
)
from ..db._records import ALL_STATUSES
from ..exceptions import ConflictError, NotFoundError
from ._model import (
    ImprovementProposal,
    InstructionChange,
    InstructionVersion,
    Rule,
    Scope,
    version_id,
)
from ._traces import auser_turn_ids

__all__ = [
    "AGENT_TYPE",
    "CHANGE_TYPE",
    "HEAD_TYPE",
    "IMPROVEMENT_NAMESPACE",
    "IMPROVEMENT_TYPES",
    "PROPOSAL_TYPE",
    "VERSION_TYPE",
    "AgentProfile",
    "Head",
    "ImprovementStore",
    "ToolSchema",
]

#: The namespace of self-improvement's rows (no store reads it).
IMPROVEMENT_NAMESPACE = "_self_improvement"
AGENT_TYPE = "agent_profile"
HEAD_TYPE = "instructions_head"
VERSION_TYPE = "instructions_version"
CHANGE_TYPE = "instructions_change"
PROPOSAL_TYPE = "improvement_proposal"
IMPROVEMENT_TYPES = (AGENT_TYPE, HEAD_TYPE, VERSION_TYPE, CHANGE_TYPE, PROPOSAL_TYPE)

_FILTER = LearningFilter(namespaces=(IMPROVEMENT_NAMESPACE,), statuses=ALL_STATUSES)
_PAGE = 500
_RETRIES = 8


class ToolSchema(BaseModel):
    """One of an agent's tools, as a model sees it."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


class AgentProfile(BaseModel):
    """What the agent runs with besides its rules: base instructions, tools, model."""

    agent_id: str | None = None
    base: str = ""
    tools: list[ToolSchema] = Field(default_factory=list)
    model: str | None = None

    @property
    def digest(self) -> str:
        """A hash of the profile (written again only when it changes)."""
        raw = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, kw_only=True)
class Head:
    """A scope's active version and its rules."""

    scope: Scope
    version: str
    rules: tuple[Rule, ...] = ()
    reflected_at: datetime | None = None
    """When reflection last ran for the scope (its turns up to then were seen)."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """The stored content, as read (what a compare-and-set compares)."""


def _row(
    learning_id: str, learning_type: str, scope: Scope, content: dict[str, Any], text: str = ""
) -> Learning:
    now = utcnow()
    return Learning(
        id=learning_id,
        learning_type=learning_type,
        namespace=IMPROVEMENT_NAMESPACE,
        agent_id=scope.agent_id,
        team_id=scope.team_id,
        content=content,
        search_text=text,
        created_at=now,
        updated_at=now,
        provenance={"store": "self_improvement"},
    )


def _in_scope(row: Learning, scope: Scope | None) -> bool:
    if scope is None:
        return True
    return row.agent_id == scope.agent_id and row.team_id == scope.team_id


class ImprovementStore:
    """Reads and writes self-improvement's rows (see the module docstring)."""

    def __init__(self, db: Db) -> None:
        self.db = db
        self._registered: dict[str | None, str] = {}

    # --- ids --------------------------------------------------------------------------------

    @staticmethod
    def head_id(scope: Scope) -> str:
        """Id of a scope's head row."""
        return stable_id(HEAD_TYPE, scope.key)

    @staticmethod
    def profile_id(agent_id: str | None) -> str:
        """Id of an agent's profile row."""
        return stable_id(AGENT_TYPE, json.dumps(agent_id))

    async def _get(self, learning_id: str) -> Learning | None:
        rows = await self.db.arun(GetLearnings(ids=(learning_id,), filter=_FILTER))
        return rows[0] if rows else None

    async def _list(self, learning_type: str, scope: Scope | None) -> list[Learning]:
        out: list[Learning] = []
        offset = 0
        flt = LearningFilter(
            namespaces=(IMPROVEMENT_NAMESPACE,),
            learning_types=(learning_type,),
            agent_id=None if scope is None else scope.agent_id,
            team_id=None if scope is None else scope.team_id,
            statuses=ALL_STATUSES,
        )
        while True:
            rows = await self.db.arun(
                ListLearnings(filter=flt, limit=_PAGE, offset=offset, order_by="created_at")
            )
            out += [r for r in rows if _in_scope(r, scope)]
            if len(rows) < _PAGE:
                return out
            offset += _PAGE

    # --- the agent's profile ----------------------------------------------------------------

    async def aprofile(self, agent_id: str | None) -> AgentProfile | None:
        """What the agent registered last (``None`` if it never did)."""
        row = await self._get(self.profile_id(agent_id))
        return None if row is None else AgentProfile.model_validate(row.content)

    async def aregister(self, profile: AgentProfile) -> None:
        """Keep the agent's base instructions, tools and model (written only when changed)."""
        digest = profile.digest
        if self._registered.get(profile.agent_id) == digest:
            return
        content = profile.model_dump(mode="json")
        row_id = self.profile_id(profile.agent_id)
        stored = await self._get(row_id)
        if stored is None or AgentProfile.model_validate(stored.content).digest != digest:
            await self.db.arun(
                PatchContent(
                    id=row_id,
                    filter=_FILTER,
                    patch=content,
                    change=Change(action="update", actor={"agent": True}, reason="registered"),
                    create=_row(row_id, AGENT_TYPE, Scope(profile.agent_id), content),
                )
            )
        self._registered[profile.agent_id] = digest

    # --- heads and versions ---------------------------------------------------------------------

    def _initial_head(self, scope: Scope) -> Learning:
        content: dict[str, Any] = {
            "agent_id": scope.agent_id,
            "team_id": scope.team_id,
            "active": version_id(scope, ()),
            "rules": [],
            "reflected_at": None,
            "proposed": 0,
        }
        return _row(self.head_id(scope), HEAD_TYPE, scope, content)

    async def ahead(self, scope: Scope) -> Head:
        """The scope's head (the empty rule set when nothing was ever approved)."""
        row = await self._get(self.head_id(scope)) or self._initial_head(scope)
        content: dict[str, Any] = row.content
        at = content.get("reflected_at")
        return Head(
            scope=scope,
            version=str(content["active"]),
            rules=tuple(Rule.model_validate(r) for r in content.get("rules") or ()),
            reflected_at=datetime.fromisoformat(at) if isinstance(at, str) else None,
            data=dict(content),
        )

    async def aset_reflected(self, scope: Scope, at: datetime) -> None:
        """Record that reflection saw the scope's turns up to ``at``."""
        await self.db.arun(
            PatchContent(
                id=self.head_id(scope),
                filter=_FILTER,
                patch={"reflected_at": at.isoformat()},
                change=Change(action="update", actor={"reflection": True}, reason="reflected"),
                create=self._initial_head(scope),
            )
        )

    def switch_ops(
        self,
        head: Head,
        rules: Sequence[Rule],
        *,
        change: InstructionChange,
        known: bool,
    ) -> tuple[list[Op[Any]], InstructionVersion]:
        """The writes that make ``rules`` the scope's active version, only if ``head`` still is.

        Run them with other writes in one batch: a lost race raises ``ConflictError`` and none
        of them applies. ``known``: the version row exists already.
        """
        scope = head.scope
        version = InstructionVersion(
            id=version_id(scope, rules),
            agent_id=scope.agent_id,
            team_id=scope.team_id,
            rules=list(rules),
            created_at=change.at,
        )
        rules_json = [r.model_dump(mode="json") for r in rules]
        actor = {"by": change.by, "action": change.action}
        ops: list[Op[Any]] = [
            PatchContent(
                id=self.head_id(scope),
                filter=_FILTER,
                patch={"active": version.id, "rules": rules_json},
                change=Change(action="update", actor=actor, reason=f"{change.action} {version.id}"),
                expected={"active": head.version},
                create=self._initial_head(scope),
            ),
            PutLearning(
                learning=_row(change.id, CHANGE_TYPE, scope, change.model_dump(mode="json"),
                              change.summary),
                change=Change(action="create", actor=actor, reason=change.action),
            ),
        ]  # fmt: skip
        if not known:
            content = version.model_dump(mode="json")
            text = "\n".join(r.text for r in rules)
            ops.append(
                PatchContent(
                    id=version.id,
                    filter=_FILTER,
                    patch={},
                    change=Change(action="create", actor=actor, reason="new version"),
                    create=_row(version.id, VERSION_TYPE, scope, content, text),
                )
            )
        return ops, version

    async def aversion(self, version: str) -> InstructionVersion | None:
        """A version by id (``None`` when no approval ever made it)."""
        row = await self._get(version)
        if row is None or row.learning_type != VERSION_TYPE:
            return None
        return InstructionVersion.model_validate(row.content)

    async def aversions(self, scope: Scope | None) -> list[InstructionVersion]:
        """A scope's versions, oldest first."""
        rows = await self._list(VERSION_TYPE, scope)
        return sorted(
            (InstructionVersion.model_validate(r.content) for r in rows),
            key=lambda v: v.created_at,
        )

    async def achanges(self, scope: Scope | None) -> list[InstructionChange]:
        """Every approval and rollback of a scope (every scope: ``None``), oldest first."""
        rows = await self._list(CHANGE_TYPE, scope)
        return sorted((InstructionChange.model_validate(r.content) for r in rows), key=_at)

    # --- proposals ----------------------------------------------------------------------------

    def put_proposal_op(self, proposal: ImprovementProposal) -> PutLearning:
        """The write that stores a proposal (new or replaced whole)."""
        return PutLearning(
            learning=_row(
                proposal.id,
                PROPOSAL_TYPE,
                proposal.scope,
                proposal.model_dump(mode="json"),
                proposal.summary,
            ),
            change=Change(
                action="create", actor={"reflection": proposal.reflection}, reason=proposal.status
            ),
        )

    async def aput_proposal(
        self, proposal: ImprovementProposal, *, same: Callable[[ImprovementProposal], bool]
    ) -> bool:
        """Store ``proposal`` unless a pending one of its scope is ``same``; whether it was.

        The check and the write are one compare-and-set on the scope's head (a counter of
        proposals), so two reflections at once never both offer the same change.
        """
        scope = proposal.scope
        for _ in range(_RETRIES):
            head = await self.ahead(scope)
            pending = [p for p in await self.aproposals(scope) if p.status == "pending"]
            if any(same(p) for p in pending):
                return False
            count = head.data.get("proposed")
            bump = PatchContent(
                id=self.head_id(scope),
                filter=_FILTER,
                patch={"proposed": int(count or 0) + 1},
                change=Change(action="update", actor={"reflection": True}, reason="proposed"),
                expected={"proposed": count},
                create=self._initial_head(scope),
            )
            try:
                await self.db.abatch([self.put_proposal_op(proposal), bump])
            except ConflictError:
                continue
            return True
        raise ConflictError(
            f"proposals for {scope.label} kept changing while storing one; reflect again"
        )

    async def aproposal(self, proposal_id: str) -> ImprovementProposal:
        """One proposal; :class:`NotFoundError` when there is none with that id."""
        row = await self._get(proposal_id)
        if row is None or row.learning_type != PROPOSAL_TYPE:
            raise NotFoundError(
                f"no improvement proposal {proposal_id!r}; list them with "
                "machine.improvements.list() or `learning-machines improvements list`"
            )
        return ImprovementProposal.model_validate(row.content)

    async def aproposals(self, scope: Scope | None = None) -> list[ImprovementProposal]:
        """Proposals of a scope (every scope: ``None``), oldest first."""
        rows = await self._list(PROPOSAL_TYPE, scope)
        return [ImprovementProposal.model_validate(r.content) for r in rows]

    def decide_op(
        self,
        proposal: ImprovementProposal,
        patch: dict[str, Any],
        *,
        by: str,
        reason: str,
        expected_status: str = "pending",
    ) -> PatchContent:
        """A status change of a proposal, only if it still has ``expected_status``."""
        return PatchContent(
            id=proposal.id,
            filter=_FILTER,
            patch=patch,
            change=Change(action="update", actor={"by": by}, reason=reason),
            expected={"status": expected_status},
        )

    # --- forget -------------------------------------------------------------------------------

    async def ascrub(self, turn_ids: set[str]) -> int:
        """Remove these turns from every proposal's and change's evidence; returns rows changed.

        A pending proposal left with no evidence is withdrawn (nothing it rests on remains).
        """
        if not turn_ids:
            return 0
        ops: list[Op[Any]] = []
        for learning_type in (PROPOSAL_TYPE, CHANGE_TYPE):
            for row in await self._list(learning_type, None):
                evidence = row.content.get("evidence") or []
                kept = [e for e in evidence if e.get("turn_id") not in turn_ids]
                if len(kept) == len(evidence):
                    continue
                patch: dict[str, Any] = {"evidence": kept}
                if learning_type == PROPOSAL_TYPE:
                    patch["gate"] = _scrub_gate(row.content.get("gate"), turn_ids)
                    if not kept and row.content.get("status") == "pending":
                        patch["status"] = "withdrawn"
                        patch["decision_note"] = "its evidence was forgotten"
                ops.append(
                    PatchContent(
                        id=row.id,
                        filter=_FILTER,
                        patch=patch,
                        change=Change(action="update", actor={"forget": True}, reason="forget"),
                    )
                )
        if ops:
            await self.db.abatch(ops)
        return len(ops)


def _scrub_gate(gate: Any, turn_ids: set[str]) -> Any:
    if not isinstance(gate, dict):
        return gate
    cases = [c for c in gate.get("cases") or [] if c.get("turn_id") not in turn_ids]
    return {**gate, "cases": cases}


def _at(change: InstructionChange) -> str:
    return change.at


async def _uncite_on_forget(request: ForgetRequest) -> int:
    return await ImprovementStore(request.db).ascrub(
        await auser_turn_ids(request.db, request.user_id)
    )


# Proposals and approved changes stop citing a forgotten user's turns (the rules stay).
register_forget_step("improvements_uncited", _uncite_on_forget)
