"""The public surface of learning_machines.embedders and the async helper."""

import asyncio
import threading

import numpy as np

import learning_machines.embedders as embedders
from learning_machines.embedders import (
    Embedder,
    HashEmbedder,
    MiniLMEmbedder,
    OpenAIEmbedder,
    aembed,
    default_embedder,
)


def test_exported_names_are_the_documented_ones():
    assert sorted(embedders.__all__) == [
        "BatchingEmbedder",
        "Embedder",
        "HashEmbedder",
        "MiniLMEmbedder",
        "OpenAIEmbedder",
        "aembed",
        "default_embedder",
    ]
    for name in embedders.__all__:
        assert getattr(embedders, name).__doc__


def test_shipped_embedders_satisfy_the_protocol():
    assert isinstance(HashEmbedder(), Embedder)
    assert isinstance(MiniLMEmbedder(), Embedder)
    assert isinstance(OpenAIEmbedder(api_key="test"), Embedder)


def test_a_plain_class_with_the_three_members_is_an_embedder():
    class Mine:
        name = "mine"
        dimensions = 2

        def embed(self, texts):
            return np.ones((len(texts), 2), dtype=np.float32) / np.sqrt(2)

    assert isinstance(Mine(), Embedder)
    assert not isinstance(object(), Embedder)


def test_default_embedder_is_shared_and_not_loaded_yet():
    first = default_embedder()
    assert first is default_embedder()
    assert isinstance(first, MiniLMEmbedder)


async def test_aembed_prefers_the_embedders_own_aembed():
    calls = []

    class Native(HashEmbedder):
        async def aembed(self, texts):
            calls.append(list(texts))
            return self.embed(texts)

    vectors = await aembed(Native(8), ["a", "b"])
    assert calls == [["a", "b"]]
    assert vectors.shape == (2, 8)


async def test_aembed_runs_a_sync_embedder_off_the_event_loop():
    # embed() blocks until a coroutine on the loop releases it: this only finishes if the loop
    # keeps running while embed() waits, i.e. embed() is not called on the loop's thread.
    released = threading.Event()
    loop_thread = threading.get_ident()
    seen = []

    class Blocking(HashEmbedder):
        def embed(self, texts):
            seen.append(threading.get_ident())
            assert released.wait(timeout=10), "the event loop was blocked"
            return super().embed(texts)

    async def release():
        await asyncio.sleep(0)
        released.set()

    vectors, _ = await asyncio.gather(aembed(Blocking(8), ["hello"]), release())
    assert vectors.shape == (1, 8)
    assert seen
    assert seen[0] != loop_thread
