"""docs/self-improvement.md shows the real text of each step: the example prints it, and the page
holds every section of what it printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_walkthrough_in_the_docs_is_the_examples_output() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "improvement_walkthrough.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout.strip()
    sections = ["===== " + part.strip() for part in printed.split("===== ") if part.strip()]
    assert len(sections) == 7
    assert "gate: passed" in printed
    assert "PermissionDenied" in printed
    assert '"strategy": "canary"' in printed
    docs = (ROOT / "docs" / "self-improvement.md").read_text(encoding="utf-8")
    for section in sections:
        assert section in docs, (
            "docs/self-improvement.md drifted from examples/improvement_walkthrough.py at "
            f"{section.splitlines()[0]!r}; paste its output"
        )
