"""docs/feedback.md shows real blocks: the example that prints them, and the docs, agree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_docs_blocks_are_the_examples_output() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "feedback_blocks.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout.strip()
    assert "## Decision log" in printed
    assert 'avoid deploy(strategy="all_at_once")' in printed
    assert "Example (" in printed
    docs = (ROOT / "docs" / "feedback.md").read_text(encoding="utf-8")
    assert printed in docs, "docs/feedback.md drifted from examples/feedback_blocks.py; paste it"
