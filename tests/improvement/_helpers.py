"""Shared pieces of the self-improvement tests: a rule-following agent model, scripted
reflection and judge, the deploy and report tools, a machine and an agent."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from pydantic_ai import ModelRetry
from pydantic_ai import messages as pa
from pydantic_ai.models.function import AgentInfo, FunctionModel

from learning_machines import Agent, LearningMachine
from learning_machines.bench._feedback_world import last_prompt
from learning_machines.db import Db
from learning_machines.embedders import HashEmbedder
from learning_machines.feedback import FeedbackConfig
from learning_machines.improvement import SelfImprovementConfig

BASE = "You are the ops assistant. Do what is asked with the tools."
_TURN = re.compile(r"- turn (\w+) · [^·]+ · went wrong[^\n]*called deploy\(")
_REPORT_TURN = re.compile(r"- turn (\w+) · [^·]+ · went wrong[^\n]*called report\(")

Script = Callable[[str], dict[str, Any]]


def deploy(service: str, strategy: str = "all_at_once") -> str:
    """Deploy a service; strategy is one of all_at_once, canary."""
    if strategy == "all_at_once":
        raise ModelRetry(f"deploying {service} all at once took the site down")
    return f"{service} deployed with {strategy}"


def report(name: str, format: str = "pdf") -> str:
    """Send a report; format is one of pdf, csv."""
    return f"{name} report sent as {format}"


_RULE = re.compile(r"Stop ([^;\n]+);([^\n]+)")


def choose(text: str, *, words: tuple[str, ...], options: tuple[str, ...]) -> str:
    """The option a model that follows its rules (in its instructions or a tool's description)
    literally takes; the first one by default."""
    for stop, do in _RULE.findall(text):
        if not any(w in (stop + do).lower() for w in words):
            continue
        good = [o for o in options if o in do and o not in stop]
        if good:
            return good[0]
    return options[0]


def fix_deploys(prompt: str) -> dict[str, Any]:
    """A reflection that proposes canary deploys, citing every failed deploy shown."""
    turns = _TURN.findall(prompt)
    if len(turns) < 2:
        return {"changes": []}
    return {
        "changes": [
            {
                "action": "add",
                "stop": "deploying with strategy all_at_once",
                "do": "deploy with strategy canary",
                "when": "a service is deployed to production",
                "evidence": turns,
                "expected_effect": "deploys stop taking production down",
                "risk": "canary deploys take longer",
            }
        ]
    }


def reacting_extraction(prompt: str) -> dict[str, Any]:
    """The learning model's part: a rationale when tools ran (nothing else)."""
    if "Section 'decision_log'" not in prompt:
        return {}
    part = {"rationale": "the user asked for it"} if "This turn's tool calls" in prompt else {}
    return {"decision_log": part}


class Counter:
    """Calls of each kind the scripted model received."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def add(self, kind: str) -> None:
        self.calls[kind] = self.calls.get(kind, 0) + 1

    def __getitem__(self, kind: str) -> int:
        return self.calls.get(kind, 0)


def model(
    *,
    reflect: Script = fix_deploys,
    judge: Script | None = None,
    counter: Counter | None = None,
) -> FunctionModel:
    """The agent, the learning model, the reflection and the judge, all by rule."""
    count = counter or Counter()

    def respond(messages: list[pa.ModelMessage], info: AgentInfo) -> pa.ModelResponse:
        prompt = last_prompt(messages)
        if info.output_tools:
            tool = info.output_tools[0]
            props = tool.parameters_json_schema.get("properties", {})
            if "changes" in props:
                count.add("reflection")
                args = reflect(prompt)
            elif "verdict" in props:
                count.add("judge")
                args = (judge or (lambda p: {"verdict": "same", "reason": "same"}))(prompt)
            else:
                count.add("extraction")
                args = reacting_extraction(prompt)
            return pa.ModelResponse(parts=[pa.ToolCallPart(tool.name, json.dumps(args))])
        count.add("answer")
        last = messages[-1]
        if isinstance(last, pa.ModelRequest) and any(
            isinstance(p, pa.ToolReturnPart | pa.RetryPromptPart) for p in last.parts
        ):
            return pa.ModelResponse(parts=[pa.TextPart("Done.")])
        instructions = "\n".join(
            [info.instructions or "", *(t.description or "" for t in info.function_tools)]
        )
        found = re.search(r"deploy ([\w-]+)", prompt)
        if found:
            strategy = choose(instructions, words=("deploy",), options=("all_at_once", "canary"))
            args = {"service": found.group(1), "strategy": strategy}
            return pa.ModelResponse(parts=[pa.ToolCallPart("deploy", json.dumps(args))])
        found = re.search(r"send me the ([\w ]+) report", prompt)
        if found:
            fmt = choose(instructions, words=("report",), options=("pdf", "csv"))
            args = {"name": found.group(1), "format": fmt}
            return pa.ModelResponse(parts=[pa.ToolCallPart("report", json.dumps(args))])
        return pa.ModelResponse(parts=[pa.TextPart("OK.")])

    return FunctionModel(respond, model_name="rule-follower")


def machine(db: Db, llm: FunctionModel, **config: Any) -> LearningMachine:
    """A machine with feedback and self-improvement (on demand unless ``every_turns`` is set)."""
    config.setdefault("every_turns", None)
    return LearningMachine(
        db=db,
        model=llm,
        embedder=HashEmbedder(),
        background=False,
        feedback=FeedbackConfig(lessons=False),
        self_improvement=SelfImprovementConfig(**config),
        curate_every_turns=None,
    )


def agent(db: Db, llm: FunctionModel | None = None, **config: Any) -> tuple[Agent, Any]:
    """An Agent ``ops`` with the deploy and report tools over :func:`machine`."""
    llm = llm or model()
    learning = machine(db, llm, **config)
    bot = Agent(
        model=llm,
        db=db,
        learning=learning,
        tools=[deploy, report],
        instructions=BASE,
        agent_id="ops",
    )
    return bot, learning
