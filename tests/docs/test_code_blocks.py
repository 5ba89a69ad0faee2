"""Every Python block of README.md and docs/**/*.md runs, as it is written in the file.

The blocks are read from the markdown (no copy kept here); markers above a block give it
setup or skip it with a reason (see ``tests/docs/_blocks.py``). A new block in any doc is run
too: mark it when it needs a key or a server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ._blocks import ROOT, Block, all_blocks, blocks, close_machines, models_scripted, run_block

BLOCKS = all_blocks()


def test_blocks_are_found_in_every_document_that_has_some() -> None:
    assert len(BLOCKS) >= 10
    readme = blocks(ROOT / "README.md")
    assert readme[0].skip
    assert "test_readme_quickstart" in readme[0].skip
    assert any("ProjectContextStore" in line for b in readme for line in b.setup)


@pytest.mark.parametrize("block", BLOCKS)
def test_block_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # blocks that write files (agent.db) write here
    monkeypatch.syspath_prepend(str(ROOT))  # examples.* for setups
    monkeypatch.setenv("OPENAI_API_KEY", "sk-docs-test")  # built, never called
    with models_scripted(monkeypatch):
        namespace = run_block(block)
    close_machines(namespace)
