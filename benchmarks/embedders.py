"""Throughput of the default embedder (all-MiniLM-L6-v2, int8 ONNX) on this machine.

Run: ``python benchmarks/embedders.py [--texts 512] [--threads N]``. Prints texts per second
when texts come one per ``embed`` call and 64 per call, on short memory-like sentences: the
best of three runs after a warm-up, since other processes on the machine add noise.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from learning_machines.embedders import MiniLMEmbedder

_SUBJECTS = ["The user", "Alice", "Our team", "The customer", "Bob's manager", "The service"]
_FACTS = [
    "prefers concise answers with code examples",
    "moved the weekly meeting to Thursday afternoon",
    "is allergic to peanuts and avoids Thai restaurants",
    "deploys the API on Kubernetes in the eu-west-1 region",
    "asked about resetting a forgotten password twice this month",
    "writes Python and is learning Rust for a side project about embedded audio",
]


def corpus(n: int) -> list[str]:
    return [
        f"{_SUBJECTS[i % len(_SUBJECTS)]} {_FACTS[(i // 3) % len(_FACTS)]} (note {i})."
        for i in range(n)
    ]


def measure(embedder: MiniLMEmbedder, texts: list[str], batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        embedder.embed(texts[i : i + batch])
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=512, help="texts per measurement")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    args = parser.parse_args()

    texts = corpus(args.texts)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    embedder = MiniLMEmbedder(threads=args.threads)
    embedder.embed(texts[:64])  # load the model and warm up
    print(repr(embedder))
    for batch in (1, 64):
        rate = max(measure(embedder, texts, batch) for _ in range(3))
        print(f"{embedder.name}  {batch:>2} per call: {rate:8.1f} texts/s  ({len(texts)} texts)")


if __name__ == "__main__":
    main()
