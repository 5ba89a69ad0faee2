"""HashEmbedder: the deterministic test embedder users get as public API."""

import os
import subprocess
import sys

import numpy as np
import pytest

from learning_machines.embedders import HashEmbedder
from learning_machines.exceptions import ConfigurationError, ValidationError


def cos(a, b):
    return float(np.dot(a, b))


def test_shape_dtype_and_unit_rows():
    vectors = HashEmbedder(32).embed(["one", "two words", "", "!!!"])
    assert vectors.shape == (4, 32)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)


def test_name_and_dimensions():
    embedder = HashEmbedder(16)
    assert embedder.name == "hash-16"
    assert embedder.dimensions == 16
    assert HashEmbedder().dimensions == 64


def test_empty_input_gives_zero_rows():
    assert HashEmbedder(8).embed([]).shape == (0, 8)


def test_texts_sharing_words_are_more_similar():
    a, b, c = HashEmbedder(256).embed(
        ["the user likes green tea", "the user likes black tea", "quarterly revenue grew"]
    )
    assert cos(a, b) > 0.5
    assert cos(a, b) > cos(a, c)


def test_case_and_punctuation_do_not_matter():
    a, b = HashEmbedder().embed(["Green Tea!", "green tea"])
    np.testing.assert_allclose(a, b)


def test_same_vectors_in_another_process_with_another_hash_seed():
    code = (
        "from learning_machines.embedders import HashEmbedder;"
        "print(HashEmbedder(16).embed(['stable hashing please']).tolist())"
    )
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(result.stdout)
    assert len(outputs) == 1
    here = HashEmbedder(16).embed(["stable hashing please"]).tolist()
    assert outputs.pop().strip() == str(here)


def test_order_is_kept():
    embedder = HashEmbedder()
    texts = ["alpha", "beta", "gamma"]
    batch = embedder.embed(texts)
    for i, text in enumerate(texts):
        np.testing.assert_array_equal(batch[i], embedder.embed([text])[0])


def test_a_bare_string_is_refused():
    with pytest.raises(ValidationError, match=r"\[text\]"):
        HashEmbedder().embed("hello")


def test_non_strings_are_refused():
    with pytest.raises(ValidationError, match="item 1"):
        HashEmbedder().embed(["ok", 3])


@pytest.mark.parametrize("dimensions", [0, 1, -5, 2.5, True])
def test_bad_dimensions(dimensions):
    with pytest.raises(ConfigurationError):
        HashEmbedder(dimensions)
