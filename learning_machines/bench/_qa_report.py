"""The markdown report of ``bench qa`` (pure: a results dict in, text out)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["qa_markdown"]


def _pct(share: Mapping[str, Any]) -> str:
    return f"{share['accuracy']:.3f} ({share['correct']}/{share['n']})"


def qa_markdown(report: Mapping[str, Any]) -> str:
    """Accuracy overall and per category, context size, model calls and tokens, latency."""
    run, data, acc = report["run"], report["data"], report["accuracy"]
    ctx, models = report["context_tokens"], report["models"]
    lines = [
        "## Answer accuracy (QA)",
        "",
        f"{run['date']} · {run['machine']} · commit {run['commit']} · data "
        f"`{Path(str(run['data'])).name}` ({run['format']})"
        + (" · **quick**" if run.get("quick") else ""),
        "",
        f"Answer model `{run['model']}`, judge `{run['judge']}`"
        + (f", learning model `{run['learn_model']}`" if run.get("learn_model") else "")
        + f"; stores: {', '.join(run['stores'])}; embedder {run['embedder']}; "
        f"rubric {run['prompt_version']}.",
        "",
        f"{data['conversations']} conversations, {data['turns']} turns, {data['questions']} "
        f"questions asked ({data['questions_in_file']} in the file).",
        "",
        "| category | accuracy (correct/n) |",
        "|---|---:|",
        f"| **overall** | **{_pct(acc['overall'])}** |",
    ]
    lines += [f"| {name} | {_pct(share)} |" for name, share in acc["by_category"].items()]
    graded = report["graded_by"]
    lines += [
        "",
        f'Graded by the judge: {graded["judge"]}; by rule (the prescribed "I don\'t know"): '
        f"{graded['rule']}; judge output unreadable (counted wrong): {graded['judge-error']}.",
        "",
        f"Context per question: budget **{ctx['budget']}** tokens; mean {ctx['mean']}, p95 "
        f"{ctx['p95']:.0f}, max {ctx['max']} (estimate: characters / 4).",
        "",
        "| model calls | sent | from cache | input tokens | output tokens | all tokens (no cache) "
        "| latency p50 / p95 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for role, u in models.items():
        if u["calls"] or u["cached"]:
            lines.append(
                f"| {role} | {u['calls']} | {u['cached']} | {u['input_tokens']:,} | "
                f"{u['output_tokens']:,} | {u['all_input_tokens'] + u['all_output_tokens']:,} | "
                f"{u['latency_ms']['p50']} / {u['latency_ms']['p95']} |"
            )
    est = report["estimated_prompt_tokens_per_question"]
    lat = report["latency_ms"]
    lines += [
        "",
        f"Tokens per conversation, every role, as the providers reported them: "
        f"{report['tokens_per_conversation']:,}. Request size per question, estimated from the "
        f"prompts (characters / 4): answer {est['answer']:,}, judge {est['judge']:,}.",
        "",
        f"Recall (build_context) p50 {lat['context_p50']} ms, p95 {lat['context_p95']} ms; "
        f"ingestion p50 {lat['ingest_per_conversation_p50']:,} ms per conversation.",
    ]
    offline = [
        m for m in (run["model"], run["judge"]) if m == "test" or str(m).startswith("function:")
    ]
    if offline:
        lines += [
            "",
            "> Offline test models answer and grade by rote: these accuracy figures say nothing "
            "about memory quality; the run checks the plumbing and measures request sizes.",
        ]
    if report.get("learning_failures"):
        lines += ["", f"> learning work that failed: {report['learning_failures']}"]
    return "\n".join(lines) + "\n"
