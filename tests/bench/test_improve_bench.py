"""bench improve: the scenario runs offline, and what it reports is what happened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from learning_machines.bench._feedback_world import TASKS
from learning_machines.bench._improve_world import naive_reflection, rule_choice
from learning_machines.bench.improve import run_improve
from learning_machines.cli import _app


def test_quick_run_from_failure_to_rule_gate_approval_and_rollback(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        _app.app, ["bench", "improve", "--quick", "--embedder", "hash", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    s = json.loads((out / "improve.json").read_text())["summary"]
    deploy = [r["failure_rate"]["deploy"] for r in s["rounds"]]
    # The agent keeps failing deploys until a rule is approved; then it stops; a rollback
    # brings the failure back. The other kinds of task never regress.
    assert deploy[0] == 1.0
    assert s["approved_in_round"] == 1
    assert s["deploy_failure_after_approval"] == [0.0]
    assert s["deploy_failure_after_rollback"] == [1.0, 1.0]
    assert all(r["failure_rate"][k] == 0.0 for r in s["rounds"] for k in ("convert", "report"))
    assert s["rule_gate"]["passed"]
    assert s["rule_gate"]["fixed"] == s["rule_gate"]["targets"] >= 2
    # The harmful proposal (one user's complaints) is stopped by the gate.
    assert "csv" in s["harmful"]
    assert s["harmful_gate"]["status"] == "failed_gate"
    assert s["harmful_gate"]["regressions"] >= 2
    # One model call per reflection; the gate's replays are counted and reported.
    usage = s["usage"]
    assert usage["reflection_calls"] == usage["reflections"] >= 2
    assert usage["replay_calls"] > 0
    assert s["effect"]["after"]["failure_rate"] < s["effect"]["before"]["failure_rate"]
    report = (out / "improve.md").read_text()
    assert "measures the mechanism, not a model's judgement" in report
    assert "| a rollback restored the old behaviour | deploy failure rate 1.00, 1.00 |" in report


def test_the_scripted_agent_follows_rules_and_the_reflection_is_naive() -> None:
    deploy = next(t for t in TASKS if t.kind == "deploy")
    rule = "- Stop calling deploy with strategy all_at_once; call deploy with strategy canary."
    assert rule_choice(deploy, "") == "all_at_once"
    assert rule_choice(deploy, rule) == "canary"
    assert rule_choice(deploy, rule.replace("deploy", "report")) == "all_at_once"
    prompt = "\n".join(
        f'- turn t{i} · 2026-12-01 · went wrong (a tool failed) · asked "x" · '
        f'called report(format="pdf", name="churn") · answered "ok"'
        for i in range(2)
    )
    [change] = naive_reflection(prompt)["changes"]
    assert change["evidence"] == ["t0", "t1"]
    assert change["do"] == "call report with format csv"


def test_too_few_rounds_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 4 rounds"):
        run_improve(out_dir=tmp_path, quick=True, rounds=3)


def test_a_model_that_proposes_nothing_is_reported_as_such(tmp_path: Path) -> None:
    """The real-model path, with pydantic-ai's offline test model: nothing to approve, no crash."""
    data = run_improve(out_dir=tmp_path, quick=True, model="test", embedder="hash", users=2)
    s = data["summary"]
    assert s["approved_in_round"] is None
    assert s["usage"]["reflection_calls"] == s["usage"]["reflections"]
    report = (tmp_path / "improve.md").read_text()
    assert "nothing passed the gate, so nothing was approved" in report
    assert "| a rollback restored the old behaviour | nothing to roll back |" in report
