import importlib.util
import itertools
import json

import pytest
from typer.testing import CliRunner

from learning_machines.cli import _app


def bench(command, data, out):
    """``learning-machines bench COMMAND --quick`` on ``data`` with the hash embedder."""
    args = ["bench", command, "--data", str(data), "--quick", "--embedder", "hash"]
    args += ["--out", str(out)]
    return CliRunner().invoke(_app.app, args)


def test_bench_retrieval_quick_end_to_end(locomo_file, tmp_path):
    out = tmp_path / "out"
    result = bench("retrieval", locomo_file, out)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "retrieval.json").read_text())
    # categories 1-4 with evidence: five per conversation, one conversation per split
    assert data["data"]["questions"] == 10
    splits = data["splits"]
    assert splits["tuning"]["conversations"] == ["conv-a"]
    assert splits["held-out"]["conversations"] == ["conv-b"]
    assert splits["tuning"]["questions"] == splits["held-out"]["questions"] == 5
    assert set(splits["held-out"]["systems"]) == set(data["systems"])
    # the recall cutoff: a higher cutoff never injects more, for own or foreign questions
    cut = data["recall_cutoff"]
    assert cut[0]["cutoff"] is None  # recall without a cutoff first
    assert [r["cutoff"] for r in cut[1:]] == sorted(r["cutoff"] for r in cut[1:])
    for low, high in itertools.pairwise(cut):
        assert high["foreign_injected"] <= low["foreign_injected"]
        assert high["R@5"] <= low["R@5"]
    assert cut[0]["foreign_injected"] > 0  # with no cutoff, another's memory is recalled
    assert set(data["systems"]) == {"learning-machines", "plain hybrid", "BM25", "dense"}
    for system in data["systems"].values():
        assert 0.0 <= system["overall"]["R@10"] <= 1.0
        assert set(system) >= {"overall", "1", "2", "3", "4"}
    # five questions over twelve turns: BM25 on distinctive words finds most evidence
    assert data["systems"]["BM25"]["overall"]["R@10"] > 0.5
    md = (out / "retrieval.md").read_text()
    assert "| learning-machines |" in md
    assert "held-out R@10" in md
    assert "Relevance cutoff" in md
    assert (out / "retrieval.png").stat().st_size > 0
    assert "Retrieval (LoCoMo)" in result.output


def test_bench_peers_quick(locomo_file, tmp_path):
    if importlib.util.find_spec("mem0") is None:  # not imported here: it reads env at import
        pytest.skip("mem0ai not installed (bench extra)")
    out = tmp_path / "out"
    result = bench("peers", locomo_file, out)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "peers.json").read_text())
    assert set(data["systems"]) == {"learning-machines", "mem0"}
    assert data["network_attempts"] == []
    assert "R@10" in data["ratios"]


def test_bench_commands_registered():
    result = CliRunner().invoke(_app.app, ["bench", "--help"])
    assert result.exit_code == 0
    for command in ("retrieval", "peers", "latency", "cost", "qa", "feedback"):
        assert command in result.output
