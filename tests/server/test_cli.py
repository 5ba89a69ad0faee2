"""``learning-machines serve`` as a newcomer runs it: a keys file, the default machine, loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "learning_machines.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_serve_starts_on_loopback_with_a_keys_file_and_answers(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    key = _cli("keys", "add", "--file", str(keys), "--name", "alice").stdout.strip()
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "learning_machines.cli",
            "serve",
            "--keys",
            str(keys),
            "--db",
            str(tmp_path / "serve.db"),
            "--no-background",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx2.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("serve did not answer")
        assert httpx2.get(f"{base}/v1/me").status_code == 401
        me = httpx2.get(f"{base}/v1/me", headers={"Authorization": f"Bearer {key}"})
        assert me.json() == {"name": "alice", "role": "user"}
        turn = httpx2.post(
            f"{base}/v1/turns",
            json={"message": "hello"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        assert turn.status_code == 200, turn.text
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    assert key not in out  # the key is never logged
    assert f"http://127.0.0.1:{port}" in out


def test_serve_without_a_keys_file_says_how_to_make_one(tmp_path: Path) -> None:
    done = _cli("serve", "--keys", str(tmp_path / "missing.toml"), "--no-background")
    assert done.returncode == 2
    assert "learning-machines keys add" in done.stderr
