"""Benchmarks: retrieval quality and answer accuracy on long conversations, a peer comparison.

Run them with ``learning-machines bench retrieval --data PATH``,
``learning-machines bench qa --data PATH --model M --judge J`` and
``learning-machines bench peers --data PATH`` (``--quick`` for a smoke test). Results are written
as ``results.json``, ``results.md`` and PNG plots into ``--out`` (default ``bench-results/``).
Plotting needs ``matplotlib`` and the peer comparison ``mem0ai``:
``pip install "learning-machines[bench]"``.
"""

from __future__ import annotations

from ._locomo import Conversation, LocomoData, Question, load_locomo
from ._metrics import QuestionScore, aggregate, ndcg_at_k, recall_at_k, score_question
from ._qa_data import QADataset, load_qa_data
from .peers import run_peers
from .qa import run_qa
from .retrieval import run_retrieval

__all__ = [
    "Conversation",
    "LocomoData",
    "QADataset",
    "Question",
    "QuestionScore",
    "aggregate",
    "load_locomo",
    "load_qa_data",
    "ndcg_at_k",
    "recall_at_k",
    "run_peers",
    "run_qa",
    "run_retrieval",
    "score_question",
]
