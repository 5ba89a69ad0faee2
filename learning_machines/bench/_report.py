"""Markdown tables and PNG bar charts of benchmark results."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["bar_chart", "metrics_table"]

_COLUMNS = ("R@1", "R@5", "R@10", "NDCG@10", "session R@10")


def metrics_table(results: Mapping[str, Any], title: str) -> str:
    """Overall and per-category metrics of every system, with latency, as markdown."""
    run = results["run"]
    systems: Mapping[str, Mapping[str, Mapping[str, float]]] = results["systems"]
    latency: Mapping[str, Mapping[str, float]] = results.get("latency_ms", {})
    lines = [
        f"## {title}",
        "",
        f"{run['date']} · {run['machine']} · commit {run['commit']} · embedder "
        f"{run.get('embedder', '?')} · data `{Path(str(run.get('data', ''))).name}`"
        + (" · **quick**" if run.get("quick") else ""),
        "",
    ]
    if "data" in results:
        d = results["data"]
        lines += [
            f"{d['conversations']} conversations, {d['turns']} turns, {d['questions']} questions "
            f"(categories 1-4 with evidence); evidence ids repaired: {d['evidence_ids_fixed']}, "
            f"skipped: {d['evidence_ids_skipped']}.",
            "",
        ]
    header = "| system | " + " | ".join(_COLUMNS) + " | p50 ms | p95 ms |"
    lines += ["### Overall", "", header, "|" + "---|" * (len(_COLUMNS) + 3)]
    for name, agg in systems.items():
        o = agg["overall"]
        lat = latency.get(name, {})
        cells = " | ".join(f"{o[c]:.3f}" for c in _COLUMNS)
        lines.append(
            f"| {name} | {cells} | {lat.get('p50', float('nan')):.1f} | "
            f"{lat.get('p95', float('nan')):.1f} |"
        )
    names: Mapping[str, str] = results.get("categories", {})
    for cat, label in names.items():
        lines += [
            "",
            f"### Category {cat}: {label}",
            "",
            "| system | n | " + " | ".join(_COLUMNS) + " |",
            "|" + "---|" * (len(_COLUMNS) + 2),
        ]
        for name, agg in systems.items():
            if cat in agg:
                c = agg[cat]
                cells = " | ".join(f"{c[k]:.3f}" for k in _COLUMNS)
                lines.append(f"| {name} | {int(c['n'])} | {cells} |")
    for note in results.get("notes", []):
        lines += ["", f"> {note}"]
    return "\n".join(lines) + "\n"


def bar_chart(results: Mapping[str, Any], path: Path, metric: str = "R@10") -> bool:
    """Grouped bars of ``metric`` per category and overall; ``False`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    systems: Mapping[str, Mapping[str, Mapping[str, float]]] = results["systems"]
    names: Mapping[str, str] = results.get("categories", {})
    groups = ["overall", *[c for c in names if all(c in a for a in systems.values())]]
    labels = ["overall", *[names[c] for c in groups[1:]]]
    width = 0.8 / max(1, len(systems))
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, (name, agg) in enumerate(systems.items()):
        xs = [g + i * width for g in range(len(groups))]
        ax.bar(xs, [agg[g][metric] for g in groups], width, label=name)
    ax.set_xticks([g + width * (len(systems) - 1) / 2 for g in range(len(groups))], labels)
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1.15)  # room above the bars for the legend
    ax.set_yticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_title(f"{metric} of evidence turns ({results['run'].get('embedder', '')})")
    ax.legend(fontsize=8, loc="upper center", ncol=len(systems), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
