import asyncio

import numpy as np
import pytest

from learning_machines.embedders import BatchingEmbedder, HashEmbedder


class Counting(HashEmbedder):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.fail = fail

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.calls.append(len(texts))
        if self.fail:
            raise RuntimeError("model crashed")
        return super().embed(texts)


def test_concurrent_calls_share_model_calls_and_get_their_own_vectors() -> None:
    inner = Counting()
    batching = BatchingEmbedder(inner)
    texts = [[f"text {i}", f"other {i}"] for i in range(20)]

    async def main() -> list[np.ndarray]:
        return list(await asyncio.gather(*(batching.aembed(t) for t in texts)))

    results = asyncio.run(main())
    assert sum(inner.calls) == 40
    assert len(inner.calls) < 20  # fewer model calls than callers
    for asked, got in zip(texts, results, strict=True):
        assert np.allclose(got, HashEmbedder().embed(asked))
    assert batching.name == inner.name
    assert batching.dimensions == inner.dimensions


def test_a_failing_model_call_fails_every_caller_of_the_batch() -> None:
    batching = BatchingEmbedder(Counting(fail=True))

    async def main() -> list[object]:
        return list(
            await asyncio.gather(
                *(batching.aembed([f"t{i}"]) for i in range(5)), return_exceptions=True
            )
        )

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) for r in results)

    async def again() -> np.ndarray:  # the queue is usable after a failure
        return await BatchingEmbedder(Counting()).aembed(["fine"])

    assert asyncio.run(again()).shape == (1, HashEmbedder().dimensions)


def test_batches_are_capped() -> None:
    inner = Counting()
    batching = BatchingEmbedder(inner, max_texts=8)

    async def main() -> None:
        await asyncio.gather(*(batching.aembed([f"t{i}", f"u{i}", f"v{i}"]) for i in range(10)))

    asyncio.run(main())
    assert max(inner.calls) <= 8
    assert sum(inner.calls) == 30


def test_sync_embed_passes_through() -> None:
    inner = Counting()
    assert BatchingEmbedder(inner).embed(["a", "b"]).shape[0] == 2
    assert inner.calls == [2]


@pytest.mark.parametrize("n", [1])
def test_a_lone_call_is_answered_alone(n: int) -> None:
    inner = Counting()
    out = asyncio.run(BatchingEmbedder(inner).aembed(["only"] * n))
    assert inner.calls == [n]
    assert out.shape == (n, inner.dimensions)
