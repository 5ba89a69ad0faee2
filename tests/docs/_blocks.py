"""Python blocks of the README and docs/**/*.md, read from the files, and how to run them offline.

Markers are HTML comments on the lines right above a block (invisible once rendered):

- ``<!-- test: skip: REASON -->``: not run (needs a key, a server …); shown as skipped.
- ``<!-- test: setup: CODE -->``: run before the block, in its namespace (names the block
  takes as given, such as ``user_message``).
- ``<!-- test: run as a script in FILE -->``: run by that test instead, as a whole script.

Model names such as ``"openai:gpt-4.1-mini"`` become a scripted model while a block runs, so
no block needs a key or the network.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
_MARK = re.compile(
    r"^<!--\s*test:\s*(?P<kind>skip|setup|run as a script)\b:?\s*(?P<text>.*?)\s*-->$"
)


@dataclass(frozen=True)
class Block:
    """One fenced python block and the markers above it."""

    path: Path
    line: int
    code: str
    setup: list[str] = field(default_factory=list)
    skip: str | None = None

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def documents() -> list[Path]:
    """README.md and every docs/**/*.md (pages in sub-folders too)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    """Every ```python block of ``path``, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = lines[i].strip()
        if fence in ("```python", "```py"):
            indent = len(lines[i]) - len(lines[i].lstrip())
            start = i + 1
            end = start
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            code = "\n".join(line[indent:] for line in lines[start:end])
            setup: list[str] = []
            skip: str | None = None
            above = i - 1
            while above >= 0 and (match := _MARK.match(lines[above].strip())):
                kind, text = match.group("kind"), match.group("text")
                if kind == "setup":
                    setup.insert(0, text)
                else:
                    skip = text if kind == "skip" else f"run as a script {text}"
                above -= 1
            found.append(Block(path=path, line=start, code=code, setup=setup, skip=skip))
            i = end
        i += 1
    return found


def all_blocks() -> list[Any]:
    """Every block as a pytest param, marked skipped (with its reason) where the doc says so."""
    params = []
    for path in documents():
        for block in blocks(path):
            marks = [pytest.mark.skip(reason=block.skip)] if block.skip else []
            params.append(pytest.param(block, id=block.name, marks=marks))
    return params


def scripted_model() -> Any:
    from learning_machines._demo import demo_extraction
    from learning_machines.testing import ScriptedModel

    return ScriptedModel(answers="OK.", extraction=demo_extraction)


@contextmanager
def models_scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """While active, a provider model name resolves to a scripted model (no key, no network)."""
    import pydantic_ai.models

    real = pydantic_ai.models.infer_model

    def infer(model: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(model, str) and ":" in model and not model.startswith("test"):
            return scripted_model()
        return real(model, *args, **kwargs)

    monkeypatch.setattr(pydantic_ai.models, "infer_model", infer)
    monkeypatch.setattr("learning_machines._models.infer_model", infer)
    yield


def run_block(block: Block) -> dict[str, Any]:
    """Run ``block`` (top-level ``await`` allowed) after its setup; returns its namespace."""
    namespace: dict[str, Any] = {"__name__": "__doc_block__"}
    for line in block.setup:
        exec(compile(line, f"{block.name} (setup)", "exec"), namespace)
    code = compile(
        block.code, block.name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        asyncio.run(result)
    return namespace


def close_machines(namespace: dict[str, Any]) -> None:
    """Stop the background learning of agents and machines a block built."""
    from learning_machines import Agent, LearningMachine

    for value in namespace.values():
        if isinstance(value, Agent | LearningMachine):
            value.close()
