"""The world of the self-improvement benchmark: tasks, a rule-following agent, a naive reflector.

Three kinds of request from the feedback benchmark: deploys (the agent's default strategy takes
production down, loudly), conversions and reports (the defaults work). The scripted agent does
each with the option its instructions argue for: a rule "Stop X; do Y when Z" that mentions the
task makes the options in X bad and those in Y good; otherwise it takes its default. It acts on
its instructions only (no memory store is on), so what changes its behaviour is what a person
approved.

The scripted reflection is naive on purpose: it proposes a rule for every option that went
wrong in at least two turns, whatever else the turns show. One user who complains about PDF
reports twice then gets a rule proposed that would switch everyone's reports to CSV — the
harmful proposal the gate must stop.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from pydantic_ai import messages as pa
from pydantic_ai.models.function import AgentInfo, FunctionModel

from ._feedback_world import (
    TASKS,
    Task,
    answer_after_tool,
    extraction_script,
    last_prompt,
    task_of,
)

__all__ = ["IMPROVE_TASKS", "agent_model", "naive_reflection", "rule_choice"]

#: deploy (fails by default), convert and report (work by default).
IMPROVE_TASKS: tuple[Task, ...] = tuple(
    t for t in TASKS if t.kind in ("deploy", "convert", "report")
)

_RULE = re.compile(r"Stop ([^;\n]+);([^\n]+)")


def rule_choice(task: Task, text: str) -> str:
    """The option an agent that follows its rules literally takes for ``task``."""
    bad: set[str] = set()
    for stop, do in _RULE.findall(text):
        if not any(word in (stop + do).lower() for word in task.about):
            continue
        good = [o for o in task.options if re.search(rf"\b{re.escape(o)}\b", do)]
        if good:
            return good[0]
        bad |= {o for o in task.options if re.search(rf"\b{re.escape(o)}\b", stop)}
    return next((o for o in task.options if o not in bad), task.options[0])


_FAILED = re.compile(r"^- turn (\w+) · [^·]+ · went wrong[^\n]*?· called (\w+)\(([^)]*)\)", re.M)
_ARG = re.compile(r'(\w+)="([^"]*)"')


def naive_reflection(prompt: str) -> dict[str, Any]:
    """A rule for every tool option that went wrong in two turns or more (see the module doc)."""
    failures: dict[tuple[str, str, str], list[str]] = {}
    for turn_id, tool, args in _FAILED.findall(prompt):
        for arg, value in _ARG.findall(args):
            failures.setdefault((tool, arg, value), []).append(turn_id)
    changes = []
    for (tool, arg, value), turns in sorted(failures.items(), key=lambda kv: -len(kv[1])):
        task = next((t for t in IMPROVE_TASKS if t.tool == tool and t.arg == arg), None)
        if task is None or len(turns) < 2 or value not in task.options:
            continue
        other = next(o for o in task.options if o != value)
        changes.append(
            {
                "action": "add",
                "stop": f"calling {tool} with {arg} {value}",
                "do": f"call {tool} with {arg} {other}",
                "when": f"a request asks for a {task.kind}",
                "evidence": turns,
                "expected_effect": f"{task.kind} requests stop going wrong",
                "risk": f"requests that needed {arg} {value} get {other}",
            }
        )
    return {"changes": changes[:2]}


def agent_model(
    *,
    reflect: Callable[[str], dict[str, Any]] = naive_reflection,
    counter: dict[str, int],
) -> FunctionModel:
    """The scripted agent (acting on its rules), its learning model and its reflection.

    ``counter`` counts calls by kind: ``answer``, ``extraction``, ``reflection``, ``judge``.
    """

    def count(kind: str) -> None:
        counter[kind] = counter.get(kind, 0) + 1

    def respond(messages: list[pa.ModelMessage], info: AgentInfo) -> pa.ModelResponse:
        prompt = last_prompt(messages)
        if info.output_tools:
            tool = info.output_tools[0]
            props = tool.parameters_json_schema.get("properties", {})
            if "changes" in props:
                count("reflection")
                args = reflect(prompt)
            elif "verdict" in props:
                count("judge")
                args = {"verdict": "same", "reason": "no rule can tell"}
            else:
                count("extraction")
                args = extraction_script(prompt, tool.parameters_json_schema)
            return pa.ModelResponse(parts=[pa.ToolCallPart(tool.name, json.dumps(args))])
        count("answer")
        after = answer_after_tool(messages)
        if after is not None:
            return after
        found = task_of(prompt, IMPROVE_TASKS)
        if found is None:
            return pa.ModelResponse(parts=[pa.TextPart("Noted.")])
        task, subject = found
        text = "\n".join(
            [info.instructions or "", *(t.description or "" for t in info.function_tools)]
        )
        args = {task.given: subject, task.arg: rule_choice(task, text)}
        return pa.ModelResponse(parts=[pa.ToolCallPart(task.tool, json.dumps(args))])

    return FunctionModel(respond, model_name="rule-following")
