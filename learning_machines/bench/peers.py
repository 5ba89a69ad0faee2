"""Side by side with a peer: mem0 (open-source ``mem0ai``) on the same LoCoMo turns and questions.

Both systems get the same documents (``"speaker: text"`` per turn, image captions included),
the same embedder (our MiniLM, wrapped as a mem0 embedder), the same questions and the same
metrics. mem0 runs fully offline: a local Qdrant collection, ``infer=False`` on add (no language
model; the LLM it insists on building is a dummy that is never called), telemetry off, and every
outgoing network connection refused and counted during the run.

Offline, mem0's search is its semantic path only: its BM25 keyword search needs fastembed's
``Qdrant/bm25`` model and its lemmatisation and entity boosts need spaCy's ``en_core_web_sm``,
both downloaded at first use; the results say which were unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..stores._episode_ranking import EpisodeRanking
from ._common import CachedEmbedder, make_embedder, percentile, run_info, write_json
from ._locomo import CATEGORY_NAMES, Conversation, load_locomo
from ._metrics import QuestionScore, aggregate, score_question
from ._report import bar_chart, metrics_table
from .retrieval import bind_episodic, open_backend, recall_questions

__all__ = ["run_peers"]

OURS = "learning-machines"
_LOCAL = frozenset({"127.0.0.1", "::1", "localhost"})
MEM0 = "mem0"


class _NetworkGuard:
    """Refuses every non-local socket connection while active, and counts the attempts."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        original, resolve = socket.socket.connect, socket.getaddrinfo
        guard = self

        def connect(sock: socket.socket, address: Any) -> Any:
            host = address[0] if isinstance(address, tuple) else str(address)
            if sock.family == socket.AF_UNIX or host in _LOCAL:
                return original(sock, address)
            guard.attempts.append(f"connect {address}")
            raise OSError(f"benchmark is offline: connection to {address} refused")

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host is None or str(host) in _LOCAL:
                return resolve(host, *args, **kwargs)
            guard.attempts.append(f"resolve {host}")
            raise socket.gaierror(f"benchmark is offline: {host} not resolved")

        socket.socket.connect = connect  # type: ignore[method-assign,assignment]
        socket.getaddrinfo = getaddrinfo
        try:
            yield
        finally:
            socket.socket.connect = original  # type: ignore[method-assign]
            socket.getaddrinfo = resolve


def _mem0_embedder(embedder: CachedEmbedder) -> Any:
    from mem0.embeddings.base import EmbeddingBase

    class OurEmbedder(EmbeddingBase):  # type: ignore[misc]
        """mem0 embedder backed by our embedder (same model, same vectors)."""

        def embed(self, text: Any, memory_action: Any = None) -> list[float]:
            return [float(x) for x in embedder.embed([str(text)])[0]]

        def embed_batch(self, texts: Any, memory_action: Any = "add") -> list[list[float]]:
            return [[float(x) for x in row] for row in embedder.embed([str(t) for t in texts])]

    return OurEmbedder()


def _mem0_memory(folder: Path, embedder: CachedEmbedder) -> Any:
    os.environ["MEM0_TELEMETRY"] = "False"  # read when mem0 is imported
    os.environ.setdefault("MEM0_DIR", str(folder / "mem0-home"))
    import mem0.memory.main as mem0_main
    import mem0.memory.telemetry as mem0_telemetry
    from mem0 import Memory
    from mem0.configs.base import MemoryConfig

    # In case mem0 was imported before the variable was set: telemetry stays off.
    mem0_telemetry.MEM0_TELEMETRY = False
    mem0_main.MEM0_TELEMETRY = False

    dummy = {"api_key": "offline-never-called", "openai_base_url": "http://127.0.0.1:9/v1"}
    config = MemoryConfig(
        vector_store={
            "provider": "qdrant",
            "config": {
                "collection_name": "locomo",
                "path": str(folder / "qdrant"),
                "embedding_model_dims": embedder.dimensions,
                "on_disk": False,
            },
        },
        embedder={"provider": "openai", "config": {**dummy, "embedding_dims": embedder.dimensions}},
        llm={"provider": "openai", "config": dummy},
        history_db_path=str(folder / "mem0-history.db"),
    )
    memory = Memory(config)
    memory.embedding_model = _mem0_embedder(embedder)
    return memory


def _mem0_limits() -> list[str]:
    notes = []
    try:
        import fastembed  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        notes.append(
            "mem0 BM25 keyword search disabled: it needs fastembed and its Qdrant/bm25 model, "
            "downloaded from Hugging Face at first use (not available offline)."
        )
    try:
        import spacy  # type: ignore[import-not-found]

        if not spacy.util.is_package("en_core_web_sm"):
            raise ImportError
    except ImportError:
        notes.append(
            "mem0 lemmatisation and entity boosts disabled: they need spaCy's en_core_web_sm, "
            "which mem0 downloads at runtime (not available offline); mem0 falls back to raw "
            "text and no entity boosts."
        )
    return notes


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


async def _ours(
    convs: Sequence[Conversation], folder: Path, embedder: CachedEmbedder, quick: bool
) -> tuple[list[QuestionScore], list[float], float]:
    db = open_backend("sqlite", folder, "peers-ours")
    store = bind_episodic(db, embedder, EpisodeRanking())
    scores: list[QuestionScore] = []
    latency: list[float] = []
    ingest = 0.0
    try:
        for conv in convs:
            start = time.perf_counter()
            await store.aadd_episodes(conv.episodes, user_id=conv.sample_id)
            ingest += time.perf_counter() - start
            for q in recall_questions(conv, quick):
                vec = tuple(float(x) for x in embedder.embed([q.question])[0])
                start = time.perf_counter()
                hits = await store.asearch(q.question, user_id=conv.sample_id, limit=10, vector=vec)
                latency.append(time.perf_counter() - start)
                refs = [h.episode.ref for h in hits if h.episode.ref]
                scores.append(score_question(q.category, refs, q.evidence))
    finally:
        db.close()
    return scores, latency, ingest


def _mem0(
    convs: Sequence[Conversation], folder: Path, embedder: CachedEmbedder, quick: bool
) -> tuple[list[QuestionScore], list[float], float]:
    memory = _mem0_memory(folder, embedder)
    scores: list[QuestionScore] = []
    latency: list[float] = []
    ingest = 0.0
    for conv in convs:
        start = time.perf_counter()
        for e in conv.episodes:
            memory.add(
                [{"role": "user", "content": f"{e.speaker}: {e.full_text}"}],
                user_id=conv.sample_id,
                metadata={"ref": e.ref, "speaker": e.speaker, "session": e.session_id},
                infer=False,
            )
        ingest += time.perf_counter() - start
        for q in recall_questions(conv, quick):
            found, seconds = _timed(
                memory.search,
                q.question,
                top_k=10,
                filters={"user_id": conv.sample_id},
                threshold=0.0,
            )
            latency.append(seconds)
            items = found.get("results", found) if isinstance(found, dict) else found
            refs = [str((m.get("metadata") or {}).get("ref")) for m in items]
            scores.append(score_question(q.category, refs, q.evidence))
    return scores, latency, ingest


def run_peers(
    data_path: str | Path,
    *,
    out_dir: str | Path = "bench-results",
    quick: bool = False,
    embedder: str = "minilm",
    plot: bool = True,
) -> dict[str, Any]:
    """Run learning-machines and mem0 on the same LoCoMo data; write and return the results.

    Writes ``peers.json``, ``peers.md`` and ``peers.png`` into ``out_dir``. If mem0 is not
    installed or cannot run offline, the results say why and hold our row only.
    """
    data = load_locomo(data_path, limit=1 if quick else None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    emb = make_embedder(embedder)
    guard = _NetworkGuard()
    rows: dict[str, tuple[list[QuestionScore], list[float], float]] = {}
    notes: list[str] = []
    # Warm the shared cache: neither system's timings then include the embedding model.
    docs = [f"{e.speaker}: {e.full_text}" for c in data.conversations for e in c.episodes]
    emb.embed(docs + [q.question for c in data.conversations for q in recall_questions(c, quick)])
    with tempfile.TemporaryDirectory(prefix="lm-peers-") as tmp, guard.active():
        folder = Path(tmp)
        rows[OURS] = asyncio.run(_ours(data.conversations, folder, emb, quick))
        try:
            rows[MEM0] = _mem0(data.conversations, folder, emb, quick)
            notes += _mem0_limits()
        except ImportError as exc:
            notes.append(
                f"mem0 not run: {exc}. Install it with pip install 'learning-machines[bench]'."
            )
        except Exception as exc:  # noqa: BLE001 - a peer's failure is a result, not a crash
            notes.append(f"mem0 failed offline: {type(exc).__name__}: {exc}")
    emb.save()
    notes.append(f"network connections attempted and refused during the run: {len(guard.attempts)}")
    systems = {name: aggregate(r[0]) for name, r in rows.items()}
    latency = {
        name: {
            "p50": round(percentile(r[1], 50) * 1000, 2),
            "p95": round(percentile(r[1], 95) * 1000, 2),
        }
        for name, r in rows.items()
    }
    results: dict[str, Any] = {
        "benchmark": "peers",
        "run": run_info(data=str(data_path), quick=quick, embedder=emb.name),
        "categories": {str(k): v for k, v in CATEGORY_NAMES.items() if k < 5},
        "systems": systems,
        "latency_ms": latency,
        "ingest_seconds": {name: round(r[2], 2) for name, r in rows.items()},
        "ratios": _ratios(systems, latency),
        "network_attempts": guard.attempts[:10],
        "notes": notes,
    }
    write_json(out / "peers.json", results)
    md = metrics_table(results, "Side by side with mem0 (LoCoMo)") + _ratio_lines(results)
    (out / "peers.md").write_text(md, "utf-8")
    if plot:
        bar_chart(results, out / "peers.png")
    return results


def _ratios(systems: dict[str, Any], latency: dict[str, dict[str, float]]) -> dict[str, float]:
    if MEM0 not in systems:
        return {}
    ours, peer = systems[OURS]["overall"], systems[MEM0]["overall"]
    out = {k: round(ours[k] / peer[k], 3) for k in ("R@1", "R@5", "R@10", "NDCG@10") if peer[k]}
    for p in ("p50", "p95"):
        if latency[MEM0][p]:
            out[f"latency {p}"] = round(latency[OURS][p] / latency[MEM0][p], 3)
    return out


def _ratio_lines(results: dict[str, Any]) -> str:
    ratios = results["ratios"]
    if not ratios:
        return ""
    cells = ", ".join(f"{k} ×{v}" for k, v in ratios.items())
    ingest = ", ".join(f"{k} {v} s" for k, v in results["ingest_seconds"].items())
    return f"\nRatios learning-machines / mem0: {cells}.\n\nIngest (embeddings cached): {ingest}.\n"
