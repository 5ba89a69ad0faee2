"""The README's quick start, run as a script exactly as printed (a scripted model swapped in).

A newcomer pastes it into a file and runs it: afterwards the database holds Alice's profile.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from learning_machines import LearningMachine
from learning_machines.db import SqliteDb
from learning_machines.embedders import HashEmbedder

from ._blocks import ROOT, blocks

# The one change: "openai:..." resolves to the demo's scripted model, so no key is needed.
_PRELUDE = """
import runpy, sys
sys.path.insert(0, {tests!r})
from docs_prelude import swap_models
swap_models()
runpy.run_path("quickstart.py", run_name="__main__")
"""

_SWAP = """
import pydantic_ai.models
import learning_machines._models as lm_models
from learning_machines._demo import demo_extraction
from learning_machines.testing import ScriptedModel

def swap_models():
    real = pydantic_ai.models.infer_model
    def infer(model, *args, **kwargs):
        if isinstance(model, str) and model.startswith("openai:"):
            return ScriptedModel(answers="Noted.", extraction=demo_extraction)
        return real(model, *args, **kwargs)
    pydantic_ai.models.infer_model = infer
    lm_models.infer_model = infer
"""


def test_the_quick_start_as_a_script_leaves_the_profile_learned(tmp_path: Path) -> None:
    (quickstart,) = [
        b for b in blocks(ROOT / "README.md") if b.skip and "test_readme_quickstart" in b.skip
    ]
    (tmp_path / "quickstart.py").write_text(quickstart.code + "\n", encoding="utf-8")
    (tmp_path / "docs_prelude.py").write_text(_SWAP, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", _PRELUDE.format(tests=str(tmp_path))],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr

    machine = LearningMachine(
        db=SqliteDb(tmp_path / "agent.db"), embedder=HashEmbedder(), background=False
    )
    (profile,) = machine.service.learnings(user_id="alice", learning_type="user_profile")
    assert "- Name: Alice" in profile.search_text
    assert "data platform" in profile.search_text
    assert "keep answers short" in profile.search_text
    assert machine.service.pending() == []  # nothing left waiting or failed
