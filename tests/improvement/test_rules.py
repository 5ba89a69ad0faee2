"""The pure rules of self-improvement: how a rule reads, the caps, versions, fingerprints."""

from __future__ import annotations

import pytest

from learning_machines.exceptions import ValidationError
from learning_machines.improvement import Rule, RuleChange, Scope
from learning_machines.improvement._model import (
    RuleLimits,
    apply_change,
    change_words,
    compose_rule,
    render_instructions,
    rule_id,
    same_change,
    version_id,
)

LIMITS = RuleLimits(max_rule_chars=120, max_rules=2, max_rules_chars=200)


def _add(stop: str, do: str = "use a canary", when: str = "deploying") -> RuleChange:
    return RuleChange(action="add", stop=stop, do=do, when=when)


def test_a_rule_reads_stop_x_do_y_when_z() -> None:
    assert compose_rule(
        stop="Stop deploying all at once.", do="Use a canary", when="when prod"
    ) == ("Stop deploying all at once; use a canary when prod.")
    with pytest.raises(ValidationError, match="all three parts"):
        compose_rule(stop="x", do="", when="z")


def test_one_change_at_a_time_within_the_caps() -> None:
    one = apply_change((), _add("a"), limits=LIMITS)
    two = apply_change(one, _add("b"), limits=LIMITS)
    assert [r.text for r in two] == [
        "Stop a; use a canary when deploying.",
        "Stop b; use a canary when deploying.",
    ]
    with pytest.raises(ValidationError, match="at most 2"):
        apply_change(two, _add("c"), limits=LIMITS)
    with pytest.raises(ValidationError, match="a rule is at most 120"):
        apply_change((), _add("x" * 130), limits=LIMITS)
    with pytest.raises(ValidationError, match="already in the instructions"):
        apply_change(one, _add("a"), limits=LIMITS)
    with pytest.raises(ValidationError, match="no tool named 'nope'"):
        apply_change((), _add("a").model_copy(update={"tool": "nope"}), limits=LIMITS, tools=[])
    replaced = apply_change(
        two,
        RuleChange(action="replace", target=two[0].id, stop="z", do="wait", when="late"),
        limits=LIMITS,
    )
    assert [r.text for r in replaced] == ["Stop z; wait when late.", two[1].text]
    assert apply_change(two, RuleChange(action="remove", target=two[1].id), limits=LIMITS) == (
        two[0],
    )
    long = RuleLimits(max_rule_chars=120, max_rules=5, max_rules_chars=80)
    with pytest.raises(ValidationError, match="at most 80"):
        apply_change(one, _add("b" * 50), limits=long)


def test_versions_are_addresses_of_content_per_scope() -> None:
    rules = (Rule(id=rule_id("Stop a; b when c.", None), text="Stop a; b when c."),)
    assert version_id(Scope("ops"), rules) == version_id(Scope("ops"), list(rules))
    assert version_id(Scope("ops"), rules) != version_id(Scope("ops"), ())
    assert version_id(Scope("ops"), rules) != version_id(Scope("other"), rules)
    assert version_id(Scope("ops"), rules) != version_id(Scope("ops", "red"), rules)
    assert render_instructions("Base.", rules).endswith("\n- Stop a; b when c.")
    assert render_instructions("Base.", ()) == "Base."


def test_the_same_change_however_worded_but_not_its_opposite() -> None:
    rule = _add("deploying with strategy all_at_once", "deploy with strategy canary", "in prod")
    reworded = _add(
        "deploying services with the all_at_once strategy", "deploy with strategy canary", "prod"
    )
    opposite = _add("deploying with strategy canary", "deploy with strategy all_at_once", "prod")
    assert same_change(change_words(rule), change_words(reworded))
    assert not same_change(change_words(rule), change_words(opposite))
    removal = RuleChange(action="remove", target="r1")
    assert not same_change(change_words(rule), change_words(removal, target_text=rule.text))
