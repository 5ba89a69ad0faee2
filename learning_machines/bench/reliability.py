"""``learning-machines bench reliability``: nothing lost, nothing leaked, nothing silent.

One row per check and backend, each with its goal: updates kept under 8 concurrent writers
(tool path and background extraction), turns lost or applied twice under ``kill -9``, fuzzed
extraction outputs handled cleanly, approval bypasses that succeeded, forged imports applied,
copies of forgotten text on disk, and a sustained load of turns from 20 users in 4 processes.
What each row means is in ``docs/reliability.md``. ``--quick`` runs small sizes (CI).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..exceptions import ConfigurationError
from ._backends import BACKENDS
from ._rel_attacks import run_approvals, run_forged_imports
from ._rel_common import Target, new_target
from ._rel_concurrent import run_concurrent
from ._rel_crash import run_crash
from ._rel_forget import run_forget
from ._rel_fuzz import run_fuzz
from ._rel_load import run_load

__all__ = ["CHECKS", "Row", "Sizes", "judge", "run_reliability"]


@dataclass(frozen=True, kw_only=True)
class Sizes:
    """How big each check runs."""

    updates_per_writer: int
    crash_turns: int
    crash_kills: int
    crash_delay: float
    crash_pace: float
    forget_turns: int
    load_turns: int

    @classmethod
    def of(cls, *, quick: bool) -> Sizes:
        """The full sizes of issue 11, or small ones for CI (``quick``)."""
        if quick:
            return cls(
                updates_per_writer=5,
                crash_turns=16,
                crash_kills=2,
                crash_delay=0.05,
                crash_pace=0.02,
                forget_turns=4,
                load_turns=80,
            )
        return cls(
            updates_per_writer=50,
            crash_turns=200,
            crash_kills=10,
            crash_delay=0.2,
            crash_pace=0.1,
            forget_turns=20,
            load_turns=2000,
        )


@dataclass(frozen=True, kw_only=True)
class Row:
    """One line of the report."""

    check: str
    backend: str
    result: str
    goal: str
    met: bool
    seconds: float
    details: dict[str, Any]


def _concurrent(path: str) -> Callable[[dict[str, Any]], tuple[str, bool]]:
    def judge_path(r: dict[str, Any]) -> tuple[str, bool]:
        p = r[path]
        text = f"{p['kept']}/{p['expected']} kept, {p['errors']} errors"
        return text, p["kept"] == p["expected"] and p["errors"] == 0

    return judge_path


def _crash(r: dict[str, Any]) -> tuple[str, bool]:
    text = f"{r['lost']} lost / {r['doubled']} twice ({r['turns']} turns, {r['kills']} kills)"
    return text, r["lost"] == 0 and r["doubled"] == 0 and not r["drain"]["error"]


def _fuzz(r: dict[str, Any]) -> tuple[str, bool]:
    text = (
        f"{r['clean']}/{r['cases']} clean ({r['learned']} learned, {r['parked']} parked), "
        f"{r['corruption']} corruption"
    )
    return text, r["clean"] == r["cases"] and r["corruption"] == 0 and r["baseline_intact"]


def _approvals(r: dict[str, Any]) -> tuple[str, bool]:
    text = (
        f"{r['succeeded']}/{r['tried']} succeeded (controls {r['controls_passed']}/{r['controls']})"
    )
    return text, r["succeeded"] == 0 and r["controls_passed"] == r["controls"]


def _imports(r: dict[str, Any]) -> tuple[str, bool]:
    control = "genuine one imports" if r["genuine_import_works"] else "GENUINE ONE FAILS"
    return f"{r['applied']}/{r['tried']} applied ({control})", (
        r["applied"] == 0 and r["genuine_import_works"]
    )


def _forget(r: dict[str, Any]) -> tuple[str, bool]:
    text = f"{r['copies_in_database_files']} in the database files"
    if r["copies_in_server_wal"] is not None:
        text += f"; {r['copies_in_server_wal']} in the server WAL (not promised)"
    sane = r["copies_before_forget"] > 0 and r["other_users_copies"] > 0
    return text, r["copies_in_database_files"] == 0 and sane


def _load(r: dict[str, Any]) -> tuple[str, bool]:
    text = (
        f"{r['turns']} turns: {r['errors']} errors, {r['lost_updates']} lost, "
        f"{r['applied_twice']} twice, {r['backlog_left']} left; {r['turns_per_s']} turns/s, "
        f"drain {r['drain_s']} s, run p50 {r['run_p50_ms']:.0f} / p95 {r['run_p95_ms']:.0f} ms"
    )
    ok = not (r["errors"] or r["lost_updates"] or r["applied_twice"] or r["backlog_left"])
    return text, ok


Runner = Callable[[Target, Sizes, str, Path], dict[str, Any]]


def _writers(target: Target, sizes: Sizes, embedder: str, workdir: Path) -> dict[str, Any]:
    # Both paths in one run: two rows share it.
    return run_concurrent(
        target, embedder=embedder, workdir=workdir, updates=sizes.updates_per_writer
    )


#: name -> (goal, run on a fresh database, judge): the checks in the order they run.
CHECKS: dict[str, tuple[str, Runner, Callable[[dict[str, Any]], tuple[str, bool]]]] = {
    "updates kept, 8 writers, tool path": (
        "all kept, 0 errors",
        _writers,
        _concurrent("tool"),
    ),
    "updates kept, 8 writers, extraction": (
        "all kept, 0 errors",
        _writers,
        _concurrent("extract"),
    ),
    "turns under kill -9": (
        "0 lost / 0 twice",
        lambda t, s, e, w: run_crash(
            t,
            embedder=e,
            workdir=w,
            turns=s.crash_turns,
            kills=s.crash_kills,
            delay=s.crash_delay,
            pace=s.crash_pace,
        ),
        _crash,
    ),
    "fuzzed extraction outputs": (
        "all clean, 0 corruption",
        lambda t, s, e, w: run_fuzz(t, embedder=e),
        _fuzz,
    ),
    "approval bypasses": ("0 succeeded", lambda t, s, e, w: run_approvals(t), _approvals),
    "forged imports": ("0 applied", lambda t, s, e, w: run_forged_imports(t), _imports),
    "forgotten text on disk": (
        "0 in the database files",
        lambda t, s, e, w: run_forget(t, embedder=e, turns=s.forget_turns),
        _forget,
    ),
    "sustained load, 20 users, 4 processes": (
        "0 errors, 0 lost, drained",
        lambda t, s, e, w: run_load(t, embedder=e, workdir=w, turns=s.load_turns),
        _load,
    ),
}


def judge(check: str, result: dict[str, Any]) -> tuple[str, bool]:
    """The row text of ``check``'s ``result`` and whether its goal is met."""
    return CHECKS[check][2](result)


def _markdown(rows: Sequence[Row]) -> str:
    lines = ["| check | backend | result | goal | met |", "|---|---|---|---|---|"]
    lines += [
        f"| {r.check} | {r.backend} | {r.result} | {r.goal} | {'yes' if r.met else '**NO**'} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def run_reliability(
    *,
    backends: Sequence[str] = BACKENDS,
    quick: bool = False,
    embedder: str | None = None,
    out_dir: Path = Path("bench-results"),
    checks: Sequence[str] | None = None,
    on_row: Callable[[Row], None] | None = None,
) -> list[Row]:
    """Run the checks on each backend; write ``reliability.json`` and ``reliability.md``.

    ``embedder`` defaults to the bundled MiniLM, or the hash embedder with ``quick``.
    ``checks`` limits the run to some of :data:`CHECKS`. ``on_row`` sees each row as it is made.
    """
    unknown = [b for b in backends if b not in BACKENDS] + [
        c for c in checks or () if c not in CHECKS
    ]
    if unknown:
        raise ConfigurationError(
            f"unknown backend or check {unknown}; backends: {', '.join(BACKENDS)}; "
            f"checks: {', '.join(CHECKS)}"
        )
    sizes = Sizes.of(quick=quick)
    kind = embedder or ("hash" if quick else "minilm")
    rows: list[Row] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lm-reliability-") as tmp:
        workdir = Path(tmp)
        for backend in backends:
            done: dict[Runner, dict[str, Any]] = {}  # a run shared by rows is run once
            for name, (goal, run, judge_row) in CHECKS.items():
                if checks is not None and name not in checks:
                    continue
                started = time.perf_counter()
                if run not in done:
                    done[run] = run(new_target(backend, workdir), sizes, kind, workdir)
                result = done[run]
                text, met = judge_row(result)
                row = Row(
                    check=name,
                    backend=backend,
                    result=text,
                    goal=goal,
                    met=met,
                    seconds=round(time.perf_counter() - started, 1),
                    details=result,
                )
                rows.append(row)
                if on_row is not None:
                    on_row(row)
    (out_dir / "reliability.json").write_text(
        json.dumps(
            {
                "quick": quick,
                "embedder": kind,
                "sizes": asdict(sizes),
                "rows": [asdict(r) for r in rows],
            },
            indent=2,
            default=str,
        ),
        encoding="utf-8",
    )
    (out_dir / "reliability.md").write_text(_markdown(rows), encoding="utf-8")
    return rows
