"""What the server adds to a recall: in process vs HTTP (/v1/turns) vs MCP (HTTP and stdio).

    python benchmarks/server_latency.py [--queries 200] [--turns 150] [--embedder minilm|hash]

One SQLite file holds a user's memory (``--turns`` remembered exchanges, learned by the scripted
demo model: profile, knowledge, entities, episodes). The same recall — begin a turn for a
message, with every built-in store — is then timed four ways, each after a warm-up:

- in process: ``await gateway.abegin(...)`` (what the server itself does per request);
- HTTP: ``POST /v1/turns`` to ``learning-machines serve`` in another process, over loopback,
  one kept-alive connection;
- MCP over streamable HTTP: the ``mcp`` SDK's client calling ``recall`` on ``/mcp``;
- MCP over stdio: the SDK's client calling ``recall`` on ``learning-machines mcp``.

The server processes run this file's :func:`machine` (``--machine server_latency:machine``), so
all four recall the same stores over the same rows with the same embedder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MESSAGES = [
    "what do we know about the billing migration?",
    "who owns the on-call rotation this quarter?",
    "remind me how we deploy the search service",
    "what did I say about PostgreSQL indexes last week?",
    "which team is Acme's CEO on?",
    "how do I like my answers?",
]


def machine() -> Any:
    """Every built-in store, learning with the scripted demo model (the servers bind the db)."""
    from learning_machines import LearningMachine
    from learning_machines._demo import demo_extraction
    from learning_machines.embedders import HashEmbedder
    from learning_machines.testing import ScriptedModel

    embedder = HashEmbedder() if os.environ.get("LM_BENCH_EMBEDDER") == "hash" else None
    return LearningMachine(
        model=ScriptedModel(extraction=demo_extraction),
        embedder=embedder,
        user_profile=True,
        session_context=True,
        learned_knowledge=True,
        entity_memory=True,
        episodic_memory=True,
        background=False,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stats(name: str, seconds: list[float]) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in seconds)
    return {
        "way": name,
        "n": len(ms),
        "p50": statistics.median(ms),
        "p95": ms[min(len(ms) - 1, int(0.95 * len(ms)))],
    }


async def _timed(call: Any, queries: int) -> list[float]:
    for i in range(20):  # warm-up: connections, caches, the embedder's first calls
        await call(MESSAGES[i % len(MESSAGES)])
    out = []
    for i in range(queries):
        start = time.perf_counter()
        await call(MESSAGES[i % len(MESSAGES)])
        out.append(time.perf_counter() - start)
    return out


async def _seed(db_path: Path, turns: int) -> None:
    from learning_machines.db import SqliteDb
    from learning_machines.server import Gateway, Principal, Role

    learning = machine()
    learning.bind(db=SqliteDb(db_path))
    gateway = Gateway(learning)
    alice = Principal(name="alice", role=Role.USER)
    topics = ["billing migration", "on-call rotation", "search service", "PostgreSQL indexes"]
    for i in range(turns):
        topic = topics[i % len(topics)]
        await gateway.aremember(
            alice,
            user_message=(
                f"I'm Alice Chen, I lead the data platform team at Acme. Note {i}: the {topic} "
                f"moves to step {i}. Lesson learned: check {topic} dashboards before a change."
            ),
            assistant_message=f"Noted: {topic} step {i}.",
            session_id=f"s{i // 10}",
        )
    await learning.await_idle(timeout=600)
    learning.close()


async def run(queries: int, turns: int) -> list[dict[str, Any]]:
    import httpx2
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client

    from learning_machines.db import SqliteDb
    from learning_machines.server import Gateway, Principal, Role
    from learning_machines.server.auth import ApiKey, hash_key, write_keys

    work = Path(tempfile.mkdtemp(prefix="lm-server-bench-"))
    db_path = work / "bench.db"
    print(f"seeding {turns} turns into {db_path} …", file=sys.stderr)
    await _seed(db_path, turns)

    results = []
    learning = machine()
    learning.bind(db=SqliteDb(db_path))
    gateway = Gateway(learning)
    alice = Principal(name="alice", role=Role.USER)

    async def in_process(message: str) -> None:
        await gateway.abegin(alice, message, session_id="bench")

    results.append(_stats("in process (gateway.abegin)", await _timed(in_process, queries)))

    key = "lm_bench_key"
    keys = work / "keys.toml"
    write_keys(keys, [ApiKey(name="alice", role=Role.USER, sha256=hash_key(key))])
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    port = _free_port()
    cli = [sys.executable, "-m", "learning_machines.cli"]
    common = ["--db", str(db_path), "--machine", "server_latency:machine", "--no-background"]
    server = subprocess.Popen(
        [*cli, "serve", "--keys", str(keys), "--port", str(port), *common],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}
    try:
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
            for _ in range(600):
                try:
                    if (await http.get(f"{base}/v1/health")).status_code == 200:
                        break
                except httpx2.TransportError:
                    await asyncio.sleep(0.1)

            async def over_http(message: str) -> None:
                response = await http.post(
                    f"{base}/v1/turns", json={"message": message, "session_id": "bench"}
                )
                response.raise_for_status()

            results.append(_stats("HTTP POST /v1/turns", await _timed(over_http, queries)))

            async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:

                async def over_mcp_http(message: str) -> None:
                    result = await client.call_tool(
                        "recall", {"message": message, "session_id": "bench"}
                    )
                    assert not result.is_error

                results.append(
                    _stats("MCP recall over HTTP (/mcp)", await _timed(over_mcp_http, queries))
                )
    finally:
        server.terminate()
        server.wait(timeout=30)

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "learning_machines.cli", "mcp", "--user", "alice", *common],
        env=env,
    )
    with (work / "stdio.log").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:

            async def over_stdio(message: str) -> None:
                result = await client.call_tool(
                    "recall", {"message": message, "session_id": "bench"}
                )
                assert not result.is_error

            results.append(_stats("MCP recall over stdio", await _timed(over_stdio, queries)))
    learning.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--turns", type=int, default=150)
    parser.add_argument("--embedder", choices=("minilm", "hash"), default="minilm")
    args = parser.parse_args()
    os.environ["LM_BENCH_EMBEDDER"] = args.embedder
    rows = asyncio.run(run(args.queries, args.turns))
    base = rows[0]["p50"]
    print(f"\n{args.queries} recalls each, {args.turns} turns remembered, {args.embedder}\n")
    print("| way | p50 ms | p95 ms | added to p50 |")
    print("|---|---:|---:|---:|")
    for row in rows:
        added = "" if row is rows[0] else f"+{row['p50'] - base:.1f} ms"
        print(f"| {row['way']} | {row['p50']:.1f} | {row['p95']:.1f} | {added} |")


if __name__ == "__main__":
    main()
