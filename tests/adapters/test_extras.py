"""The adapters' extras stay small: nothing in them pulls PyTorch, the base install is unchanged."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, distribution

import pytest
from packaging.requirements import Requirement

HEAVY = {"torch", "tensorflow", "jax", "nvidia-cudnn-cu12", "sentence-transformers"}


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _closure(requirements: list[Requirement], extras: set[str]) -> set[str]:
    """Every installed distribution these requirements pull in, transitively."""
    seen: set[str] = set()
    todo = [(r, extras) for r in requirements]
    while todo:
        req, active = todo.pop()
        env_ok = req.marker is None or any(
            req.marker.evaluate({"extra": extra}) for extra in (active or {""})
        )
        name = _name(req.name)
        if not env_ok or name in seen:
            continue
        seen.add(name)
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            continue  # optional on this platform
        todo += [(Requirement(r), set(req.extras)) for r in dist.requires or []]
    return seen


def _extra(extra: str) -> set[str]:
    requires = [Requirement(r) for r in distribution("learning-machines").requires or []]
    return _closure(
        [r for r in requires if r.marker and r.marker.evaluate({"extra": extra})], {extra}
    )


@pytest.mark.parametrize("extra", ["langchain", "openai-agents"])
def test_an_adapter_extra_pulls_no_pytorch(extra: str) -> None:
    pulled = _extra(extra)
    assert pulled, f"the {extra} extra requires nothing?"
    assert not pulled & HEAVY, pulled & HEAVY


def test_the_base_install_needs_no_framework() -> None:
    requires = [Requirement(r) for r in distribution("learning-machines").requires or []]
    base = _closure([r for r in requires if r.marker is None], set())
    assert not base & {"langchain", "langgraph", "openai-agents", *HEAVY}
