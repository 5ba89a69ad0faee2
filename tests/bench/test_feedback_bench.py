"""bench feedback: the scenarios run offline, and what they report is what happened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from learning_machines.bench._feedback_world import TASKS, choose, task_of
from learning_machines.bench.feedback import ARMS, run_feedback
from learning_machines.cli import _app


def test_quick_run_shows_the_mechanism_and_keeps_one_extraction_call(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        _app.app, ["bench", "feedback", "--quick", "--embedder", "hash", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "feedback.json").read_text())
    without, logged, lessons = (data["arms"][name] for name in ARMS)
    # Without Phase 2 nothing is learned: the failing approaches keep failing.
    assert min(without["failure_rate_per_round"]) >= 0.5
    # With it, the failures of round one are not repeated ...
    assert lessons["failure_rate_per_round"][0] >= 0.5
    assert lessons["failure_rate_per_round"][-1] <= 0.15
    assert logged["failure_rate_per_round"][-1] < without["failure_rate_per_round"][-1]
    # ... and shared lessons spare a newcomer what others went through.
    assert lessons["newcomer_failure_rate_per_round"][-1] == 0.0
    assert logged["newcomer_failure_rate_per_round"][-1] > 0.0
    assert lessons["lessons_created"] >= 3
    assert lessons["wrong_lessons_created"] == 0
    for arm in (without, logged, lessons):
        assert arm["extraction_calls_per_turn"] == 1.0  # still one call per turn
    report = (out / "feedback.md").read_text()
    assert "measures the mechanism, not a model's judgement" in report
    assert "| weight |" in report


def test_a_real_model_path_runs_with_a_judge_for_what_no_rule_can_score(tmp_path: Path) -> None:
    # pydantic-ai's offline TestModel stands in for "provider:model" (it calls tools with
    # made-up arguments and answers anything); the judge scores turns without a task tool call.
    data = run_feedback(
        out_dir=tmp_path, quick=True, model="test", judge="test", embedder="hash",
        rounds=1, user_count=1, ranking=False, progress=lambda _: None,
    )  # fmt: skip
    for arm in data["arms"].values():
        assert len(arm["failure_rate_per_round"]) == 1
        assert arm["unscored_turns"] == 0  # the judge scored what the rule could not
    assert data["run"]["model"] == "test"


def test_unknown_model_is_a_clear_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _app.app,
        ["bench", "feedback", "--quick", "--model", "nosuchprovider:x", "--out", str(tmp_path)],
    )
    assert result.exit_code == 2
    assert "nosuchprovider" in result.output


@pytest.mark.parametrize("task", TASKS, ids=[t.kind for t in TASKS])
def test_the_scripted_model_follows_its_context(task: object) -> None:
    from learning_machines.bench._feedback_world import Task

    assert isinstance(task, Task)
    default, other = task.options
    assert choose(task, "") == default
    said_wrong = f'- asked: you called {task.tool}({task.arg}="{default}") → went wrong (x)'
    assert choose(task, said_wrong) == other
    lesson = f'- When a request is like "x": do {task.tool}({task.arg}="{other}") — it worked'
    assert choose(task, lesson) == other
    # One stray complaint among successes does not flip it.
    mixed = "\n".join(
        [said_wrong] + [f'- you called {task.tool}({task.arg}="{default}") → worked'] * 2
    )
    assert choose(task, mixed) == default
    message = task.template.format(subject=task.subjects[0])
    assert task_of(message) == (task, task.subjects[0])
    assert task_of("Thanks, perfect.") is None
