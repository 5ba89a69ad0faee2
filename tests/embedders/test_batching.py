import asyncio

import numpy as np
import pytest

from learning_machines.embedders import BatchingEmbedder, HashEmbedder
from learning_machines.exceptions import ConfigurationError, ValidationError


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


def test_a_text_embedded_before_is_not_embedded_again() -> None:
    inner = Counting()
    batching = BatchingEmbedder(inner, cache_size=2)

    async def main() -> tuple[np.ndarray, np.ndarray]:
        first = await batching.aembed(["Acme (company)", "Bob Lee (person)"])
        again = await batching.aembed(["Bob Lee (person)", "new text", "Bob Lee (person)"])
        return first, again

    first, again = asyncio.run(main())
    assert inner.calls == [2, 1]  # only "new text" reached the model the second time
    asked = ["Bob Lee (person)", "new text", "Bob Lee (person)"]
    assert np.allclose(again, HashEmbedder().embed(asked))
    assert np.allclose(first[1], again[0])
    again[0] += 1.0  # a caller changing its result does not change what others get
    assert np.allclose(batching.embed(["Bob Lee (person)"])[0], first[1])
    assert inner.calls == [2, 1]
    batching.embed(["Acme (company)"])  # the oldest was dropped to keep 2 texts
    assert inner.calls == [2, 1, 1]


def test_the_cache_can_be_turned_off_and_bad_input_is_refused() -> None:
    inner = Counting()
    batching = BatchingEmbedder(inner, cache_size=0)
    batching.embed(["a"])
    batching.embed(["a"])
    assert inner.calls == [1, 1]
    with pytest.raises(ConfigurationError, match="cache_size"):
        BatchingEmbedder(inner, cache_size=-1)
    with pytest.raises(ValidationError, match="not a single string"):
        batching.embed("a")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="Convert it with str"):
        asyncio.run(batching.aembed([{"not": "text"}]))  # type: ignore[list-item]
