"""The CLI run as a separate process at 80 columns, ids copied from one command to the next.

What a person does: read an id off ``proposals list`` or ``show`` and paste it into
``proposals approve``, ``history`` and ``restore``. Nothing is parsed but what is printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from learning_machines import LearnedKnowledgeConfig, LearningMachine, LearningMode
from learning_machines.db import Change, Learning, PutLearning, SqliteDb, utcnow
from learning_machines.embedders import HashEmbedder

ROOT = Path(__file__).resolve().parents[2]


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``learning-machines ARGS`` in ``cwd``, as a terminal 80 columns wide would run it."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEARNING_MACHINES_")}
    base.update({"COLUMNS": "80", "PYTHONPATH": str(ROOT)}, **(env or {}))
    done = subprocess.run(
        [sys.executable, "-m", "learning_machines.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=base,
    )
    for line in done.stdout.splitlines():
        assert len(line) <= 80, f"wider than the terminal: {line!r}"
    return done


def _propose(path: Path, *, namespace: str = "global", model: str | None = None) -> None:
    machine = LearningMachine(
        db=SqliteDb(path),
        embedder=HashEmbedder(),
        background=False,
        learned_knowledge=LearnedKnowledgeConfig(mode=LearningMode.PROPOSE, namespace=namespace),
    )
    tools = {t.__name__: t for t in machine.get_tools(user_id="alice", session_id="s1")}
    answer = tools["save_learning"](
        title="Retry idempotent calls only",
        learning="Retry HTTP calls only when they are idempotent.",
        tags=["http"],
    )
    assert "proposed" in answer


def _first_id(output: str, marker: str) -> str:
    """The id at the start of the table row that mentions ``marker``."""
    for line in output.splitlines():
        if marker in line:
            match = re.match(r"\s*([0-9a-f]{8,32})\s", line)
            assert match, f"no id at the start of {line!r}"
            return match.group(1)
    raise AssertionError(f"{marker!r} not in:\n{output}")


def test_an_id_from_proposals_list_approves_the_proposal(tmp_path: Path) -> None:
    _propose(tmp_path / "learnings.db")

    listed = cli("proposals", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "global" in listed.stdout  # the namespace it would write to
    proposal = _first_id(listed.stdout, "pending")
    assert len(proposal) < 32  # a short start, not the whole id

    approved = cli("proposals", "approve", proposal, "--by", "carol", cwd=tmp_path)
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.startswith("approved ")
    after = cli("proposals", "list", "--status", "approved", cwd=tmp_path)
    assert _first_id(after.stdout, "approved") == proposal
    assert "by carol" in after.stdout


def test_an_id_from_show_goes_into_history_and_restore(tmp_path: Path) -> None:
    old = utcnow() - timedelta(days=500)
    with SqliteDb(tmp_path / "learnings.db") as db:
        db.run(
            PutLearning(
                learning=Learning(
                    learning_type="note",
                    user_id="u1",
                    search_text="An old note nobody read",
                    created_at=old,
                    updated_at=old,
                ),
                change=Change(action="create", actor={"store": "test"}),
            )
        )

    shown = cli("show", "--user", "u1", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    learning = _first_id(shown.stdout, "An old note")

    curated = cli("curate", cwd=tmp_path)
    assert curated.returncode == 0, curated.stderr
    assert "changed 1: 0 merged, 0 superseded, 1 archived" in " ".join(curated.stdout.split())

    history = cli("history", learning, cwd=tmp_path)
    assert history.returncode == 0, history.stderr
    assert re.search(r"\barchive\b", history.stdout)

    restored = cli("restore", learning, cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert "(active)" in restored.stdout
    again = cli("show", "--user", "u1", cwd=tmp_path)
    assert _first_id(again.stdout, "An old note") == learning


def test_approving_with_the_apps_machine_needs_no_model_or_key(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(
        "from learning_machines import LearnedKnowledgeConfig, LearningMachine, LearningMode\n"
        "machine = LearningMachine(\n"
        "    model='openai:gpt-4.1-mini',\n"
        "    learned_knowledge=LearnedKnowledgeConfig(\n"
        "        mode=LearningMode.PROPOSE, namespace='engineering'\n"
        "    ),\n"
        ")\n",
        encoding="utf-8",
    )
    _propose(tmp_path / "learnings.db", namespace="engineering")
    proposal = _first_id(cli("proposals", "list", cwd=tmp_path).stdout, "pending")
    no_key = {"OPENAI_API_KEY": ""}

    # The default machine writes learned knowledge to 'global': it must not apply this one.
    default = cli("proposals", "approve", proposal, "--by", "carol", cwd=tmp_path, env=no_key)
    assert default.returncode == 2
    assert "--machine" in default.stderr
    assert len(default.stderr.splitlines()) == 1

    # The app's module is found in the current directory; its model is never needed.
    own = cli(
        "proposals", "approve", proposal, "--by", "carol", "--machine", "myapp:machine",
        cwd=tmp_path, env=no_key,
    )  # fmt: skip
    assert own.returncode == 0, own.stderr
    assert "approved" in own.stdout
    assert "engineering" in own.stdout
