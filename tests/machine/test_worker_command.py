"""``learning-machines worker`` processes pending work written by another process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from learning_machines.db import SqliteDb

from ._worker_machine import build

ROOT = Path(__file__).resolve().parents[2]


def test_worker_command_finishes_work_enqueued_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    machine = build()
    machine.bind(db=SqliteDb(path))
    machine.process("I deploy on Fridays", user_id="u", session_id="s")
    assert len(machine.service.pending(statuses=("pending",))) == 1

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "learning_machines.cli",
            "worker",
            "--db",
            str(path),
            "--machine",
            "tests.machine._worker_machine:build",
            "--once",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert "processed 1 ok, 0 failed" in done.stdout
    store = machine.stores["notes"]
    assert store.notes("u") == ["I deploy on Fridays"]  # type: ignore[attr-defined]
    assert machine.service.pending(statuses=("pending",)) == []
