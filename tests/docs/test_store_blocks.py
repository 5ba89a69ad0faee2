"""docs/stores.md shows exactly what the stores print (its blocks come from an example)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from examples.store_blocks import collect, render_docs

ROOT = Path(__file__).resolve().parents[2]


def test_every_marked_block_in_docs_stores_is_what_the_example_prints() -> None:
    doc = (ROOT / "docs" / "stores.md").read_text(encoding="utf-8")
    blocks = asyncio.run(collect())
    assert doc.count("<!-- store_blocks: ") == len(blocks)  # every block is shown, once
    assert render_docs(doc, blocks) == doc, (
        "docs/stores.md is out of date: run python examples/store_blocks.py --write-docs "
        "docs/stores.md"
    )


def test_render_docs_replaces_only_the_marked_block() -> None:
    doc = "a\n<!-- store_blocks: x -->\n```text\nold\n```\n```text\nother\n```\n"
    assert render_docs(doc, {"x": "new"}) == doc.replace("old", "new")
