"""docs/stores.md shows exactly what the stores print (its blocks come from an example)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from examples.store_blocks import collect, render_docs

ROOT = Path(__file__).resolve().parents[2]

# A shared learning shows the day it was learned: today's date when the example runs.
_LEARNED_ON = re.compile(r", \d{4}-\d{2}-\d{2}\)$", re.M)


def _undated(text: str) -> str:
    return _LEARNED_ON.sub(", DATE)", text)


def test_every_marked_block_in_docs_stores_is_what_the_example_prints() -> None:
    doc = (ROOT / "docs" / "stores.md").read_text(encoding="utf-8")
    blocks = asyncio.run(collect())
    assert doc.count("<!-- store_blocks: ") == len(blocks)  # every block is shown, once
    assert _undated(render_docs(doc, blocks)) == _undated(doc), (
        "docs/stores.md is out of date: run python examples/store_blocks.py --write-docs "
        "docs/stores.md"
    )


def test_render_docs_replaces_only_the_marked_block() -> None:
    doc = "a\n<!-- store_blocks: x -->\n```text\nold\n```\n```text\nother\n```\n"
    assert render_docs(doc, {"x": "new"}) == doc.replace("old", "new")
