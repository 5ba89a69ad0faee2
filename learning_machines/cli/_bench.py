"""``learning-machines bench``: retrieval, answer accuracy, latency, cost, peers, reliability.

Every command writes JSON, a markdown table and PNG plots into ``--out``. Benchmarks import
lazily, so the rest of the CLI starts fast and works without the ``bench`` extra.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from .._progress import progress

__all__ = ["register"]

console = Console()

DataOption = Annotated[
    Path,
    typer.Option(
        "--data", help="A conversation file in LoCoMo format.", exists=True, dir_okay=False
    ),
]
QuickOption = Annotated[
    bool, typer.Option("--quick", help="Smoke test: one conversation, about 40 questions.")
]
OutOption = Annotated[Path, typer.Option("--out", help="Folder for results (JSON, md, PNG).")]
EmbedderOption = Annotated[
    str, typer.Option("--embedder", help="minilm (default model) or hash (tests only).")
]
DEFAULT_OUT = Path("bench-results")


def _runner(module: str, name: str) -> Any:
    """``learning_machines.bench.<module>.<name>``, or exit with a clear message."""
    try:
        mod = importlib.import_module(f"learning_machines.bench.{module}")
    except ModuleNotFoundError as exc:
        console.print(
            f"[red]bench {module} is not available: {exc}.[/red] Install the benchmark extra "
            "with pip install 'learning-machines[bench]', or update learning-machines."
        )
        raise typer.Exit(2) from exc
    run = getattr(mod, name)

    @functools.wraps(run)
    def reported(*args: Any, **kwargs: Any) -> Any:
        # Elapsed time on a terminal, a line every 15 s in CI: long runs never look stuck.
        with progress(f"bench {module}", heartbeat=True, interval=15.0):
            return run(*args, **kwargs)

    return reported


def _show(path: Path) -> None:
    if path.exists():
        typer.echo(path.read_text(encoding="utf-8"))


def retrieval(
    data: DataOption,
    quick: QuickOption = False,
    out: OutOption = DEFAULT_OUT,
    backend: Annotated[
        str,
        typer.Option(help="sqlite, or postgres ($LEARNING_MACHINES_BENCH_PG_URL)."),
    ] = "sqlite",
    embedder: EmbedderOption = "minilm",
    held_out: Annotated[
        int,
        typer.Option(
            "--held-out",
            help="Conversations at the end of the file not used for tuning, reported apart.",
        ),
    ] = 2,
) -> None:
    """Retrieval quality on LoCoMo: episodic memory vs BM25 vs dense (recall@k, NDCG@10)."""
    run = _runner("retrieval", "run_retrieval")
    run(data, out_dir=out, quick=quick, backend=backend, embedder=embedder, held_out=held_out)
    _show(out / "retrieval.md")


def peers(
    data: DataOption,
    quick: QuickOption = False,
    out: OutOption = DEFAULT_OUT,
    embedder: EmbedderOption = "minilm",
) -> None:
    """The same questions and latency measurement for learning-machines and mem0, offline."""
    run = _runner("peers", "run_peers")
    run(data, out_dir=out, quick=quick, embedder=embedder)
    _show(out / "peers.md")


def latency(
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Smoke test: 2,000 learnings, SQLite only, a few queries."),
    ] = False,
    out: OutOption = DEFAULT_OUT,
    size: Annotated[
        list[int] | None, typer.Option("--size", help="Number of learnings (repeatable).")
    ] = None,
    backend: Annotated[
        list[str] | None, typer.Option("--backend", help="sqlite and/or postgres (repeatable).")
    ] = None,
) -> None:
    """Recall latency, ingestion throughput and size at growing numbers of learnings."""
    run = _runner("latency", "run_latency")
    run(out_dir=out, quick=quick, sizes=size, backends=backend or [])
    _show(out / "latency.md")


def cost(
    quick: Annotated[
        bool, typer.Option("--quick", help="Smoke test: the first 5 turns only.")
    ] = False,
    out: OutOption = DEFAULT_OUT,
) -> None:
    """Tokens and model calls spent on learning, per turn."""
    run = _runner("cost", "run_cost")
    run(out_dir=out, quick=quick)
    _show(out / "cost.md")


def qa(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="A LoCoMo-format or LongMemEval-format JSON file.",
            exists=True,
            dir_okay=False,
        ),
    ],
    model: Annotated[
        str, typer.Option("--model", help="Answer model: 'provider:model' (or 'test' offline).")
    ],
    judge: Annotated[
        str, typer.Option("--judge", help="Judge model: 'provider:model' (may differ).")
    ],
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Smoke test: one conversation, 40 questions."),
    ] = False,
    out: OutOption = DEFAULT_OUT,
    budget: Annotated[
        int, typer.Option("--budget", help="Token budget of the context per question.")
    ] = 2000,
    conversations: Annotated[
        int | None, typer.Option("--conversations", help="Only the first N conversations.")
    ] = None,
    questions: Annotated[
        int | None,
        typer.Option("--questions", help="N questions per conversation, spread over categories."),
    ] = None,
    learn_model: Annotated[
        str | None,
        typer.Option(
            "--learn-model",
            help="Also learn with this model (default stores: user profile, entity memory).",
        ),
    ] = None,
    store: Annotated[
        list[str] | None,
        typer.Option("--store", help="Store filled by --learn-model (repeatable)."),
    ] = None,
    embedder: EmbedderOption = "minilm",
    concurrency: Annotated[
        int, typer.Option("--concurrency", help="Questions in flight at once.")
    ] = 4,
    cache: Annotated[
        Path | None,
        typer.Option("--cache", help="Model-call cache file (default: OUT/qa-cache.jsonl)."),
    ] = None,
) -> None:
    """Answer accuracy judged by a model (LoCoMo, LongMemEval); cached and resumable."""
    from ..exceptions import LearningMachinesError, UsageError

    run = _runner("qa", "run_qa")
    try:
        run(
            data,
            model=model,
            judge=judge,
            out_dir=out,
            budget=budget,
            quick=quick,
            conversations=conversations,
            questions=questions,
            learn_model=learn_model,
            stores=tuple(store) if store else ("user_profile", "entity_memory"),
            embedder=embedder,
            concurrency=concurrency,
            cache=cache,
        )
    except LearningMachinesError as exc:
        console.print(f"[red]bench qa: {exc}[/red]")
        raise typer.Exit(2 if isinstance(exc, UsageError) else 1) from exc
    _show(out / "qa.md")


def feedback(
    quick: Annotated[
        bool, typer.Option("--quick", help="Smoke test: 3 users, 3 rounds, hash embedder.")
    ] = False,
    out: OutOption = DEFAULT_OUT,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="Run with a real model, 'provider:model' (default: scripted)."
        ),
    ] = None,
    judge: Annotated[
        str | None,
        typer.Option("--judge", help="Model that scores turns a rule cannot (no tool called)."),
    ] = None,
    backend: Annotated[str, typer.Option(help="sqlite or postgres.")] = "sqlite",
    embedder: EmbedderOption = "minilm",
    rounds: Annotated[int | None, typer.Option(help="Rounds (default 6; 3 with --quick).")] = None,
    users: Annotated[int | None, typer.Option(help="Users (default 6; 3 with --quick).")] = None,
    noise: Annotated[float, typer.Option(help="Share of reactions the wrong way round.")] = 0.1,
    ranking: Annotated[
        bool, typer.Option(help="Also measure the feedback weight in search ranking.")
    ] = True,
    latency_records: Annotated[
        int | None,
        typer.Option("--latency-records", help="Also time recall with this many decisions."),
    ] = None,
) -> None:
    """Failure rate per round with and without Phase 2 (decision log, feedback, lessons)."""
    from ..exceptions import LearningMachinesError, UsageError

    run = _runner("feedback", "run_feedback")
    try:
        run(
            out_dir=out, quick=quick, model=model, judge=judge, backend=backend,
            embedder=embedder, rounds=rounds, user_count=users, noise=noise,
            ranking=ranking, latency_records=latency_records,
        )  # fmt: skip
    except LearningMachinesError as exc:
        console.print(f"[red]bench feedback: {exc}[/red]")
        raise typer.Exit(2 if isinstance(exc, UsageError) else 1) from exc
    _show(out / "feedback.md")


def improve(
    quick: Annotated[
        bool, typer.Option("--quick", help="Smoke test: 4 rounds of 4 users, hash embedder.")
    ] = False,
    out: OutOption = DEFAULT_OUT,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="A real model, 'provider:model', as the agent, reflection and gate (default: "
            "scripted).",
        ),
    ] = None,
    backend: Annotated[str, typer.Option(help="sqlite or postgres.")] = "sqlite",
    embedder: EmbedderOption = "minilm",
    rounds: Annotated[int | None, typer.Option(help="Rounds (default 6; 4 with --quick).")] = None,
    users: Annotated[
        int | None, typer.Option(help="New users a round (default 8; 4 with --quick).")
    ] = None,
    noise: Annotated[float, typer.Option(help="Share of ratings the wrong way round.")] = 0.05,
) -> None:
    """Self-improvement: a recurring failure becomes an approved rule; the gate; a rollback."""
    from ..exceptions import LearningMachinesError, UsageError

    run = _runner("improve", "run_improve")
    try:
        run(
            out_dir=out, quick=quick, model=model, backend=backend, embedder=embedder,
            rounds=rounds, users=users, noise=noise,
        )  # fmt: skip
    except LearningMachinesError as exc:
        console.print(f"[red]bench improve: {exc}[/red]")
        raise typer.Exit(2 if isinstance(exc, UsageError) else 1) from exc
    _show(out / "improve.md")


def reliability(
    backend: Annotated[
        str, typer.Option("--backend", help="sqlite, postgres or both (PostgreSQL is started).")
    ] = "both",
    quick: Annotated[
        bool, typer.Option("--quick", help="Small sizes for CI (under a minute per backend).")
    ] = False,
    out: OutOption = DEFAULT_OUT,
    embedder: Annotated[
        str | None,
        typer.Option("--embedder", help="minilm or hash (default: minilm; hash with --quick)."),
    ] = None,
    check: Annotated[
        list[str] | None, typer.Option("--check", help="Only this check (repeatable).")
    ] = None,
) -> None:
    """Nothing lost, leaked or silent: concurrent writers, kill -9, fuzzing, attacks, load.

    Exits with status 1 when a goal is missed.
    """
    from ..exceptions import LearningMachinesError, UsageError

    run = _runner("reliability", "run_reliability")
    backends = ("sqlite", "postgres") if backend == "both" else (backend,)

    def show(row: Any) -> None:
        mark = "ok " if row.met else "[red]MISSED[/red]"
        console.print(f"{mark} {row.backend:8} {row.check}: {row.result} ({row.seconds} s)")

    try:
        rows = run(
            backends=backends, quick=quick, embedder=embedder, out_dir=out,
            checks=check, on_row=show,
        )  # fmt: skip
    except LearningMachinesError as exc:
        console.print(f"[red]bench reliability: {exc}[/red]")
        raise typer.Exit(2 if isinstance(exc, UsageError) else 1) from exc
    _show(out / "reliability.md")
    missed = [f"{r.check} ({r.backend})" for r in rows if not r.met]
    if missed:
        console.print(f"[red]goal missed: {', '.join(missed)}[/red]")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``bench`` command group to ``app``."""
    bench = typer.Typer(
        help="Benchmarks: retrieval, answer accuracy, latency, cost, peers, feedback, improve, "
        "reliability.",
        no_args_is_help=True,
    )
    bench.command("retrieval")(retrieval)
    bench.command("peers")(peers)
    bench.command("latency")(latency)
    bench.command("cost")(cost)
    bench.command("qa")(qa)
    bench.command("feedback")(feedback)
    bench.command("improve")(improve)
    bench.command("reliability")(reliability)
    app.add_typer(bench, name="bench")
