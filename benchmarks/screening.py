"""How often screening flags benign text, and how often it catches what it should.

Runs :func:`learning_machines.stores._screen.screen_text` over the tables of
``tests/stores/_screen_corpus.py`` (benign insights, dev and held-out; hostile texts, dev and
held-out), over the short learnings of ``benchmarks/calibrate_dedup.py`` (written for another
purpose, so independent of the rules), and, with ``--locomo FILE``, over every turn and
observation of a LoCoMo file (natural chat, not insights: a stress test for false positives).

    python benchmarks/screening.py
    python benchmarks/screening.py --locomo ../shared/data/locomo-dev.json
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from learning_machines.stores._screen import screen_text  # noqa: E402
from tests.stores import _screen_corpus as corpus  # noqa: E402


def _benign(name: str, texts: list[str]) -> None:
    flagged = [t for t in texts if screen_text(t).flagged]
    kinds = collections.Counter(k for t in flagged for k in screen_text(t).kinds)
    rate = 100 * len(flagged) / max(1, len(texts))
    print(f"{name:<28} flagged {len(flagged):>4} / {len(texts):<5} ({rate:.2f}%) {dict(kinds)}")
    for text in flagged[:5]:
        print(f"    {text[:90]!r}: {'; '.join(screen_text(text).reasons)}")


def _hostile(name: str, items: list[tuple[str, str]]) -> None:
    missed = [(t, k) for t, k in items if k not in screen_text(t).kinds]
    print(f"{name:<28} caught  {len(items) - len(missed):>4} / {len(items)}")
    for text, kind in missed:
        print(f"    missed ({kind}): {text!r}")


def _calibration_texts() -> list[str]:
    path = ROOT / "benchmarks" / "calibrate_dedup.py"
    spec = importlib.util.spec_from_file_location("calibrate", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    texts: set[str] = set()
    for value in vars(module).values():
        if isinstance(value, list):
            for pair in value:
                if isinstance(pair, tuple):
                    texts.update(t for t in pair if isinstance(t, str))
    return sorted(texts)


def _locomo(path: Path) -> tuple[list[str], list[str]]:
    data = json.loads(path.read_text())
    turns: list[str] = []
    observations: list[str] = []
    for sample in data:
        for value in sample.get("conversation", {}).values():
            if isinstance(value, list):
                turns.extend(t["text"] for t in value if isinstance(t, dict) and t.get("text"))
        for value in sample.get("observation", {}).values():
            if isinstance(value, dict):
                for items in value.values():
                    observations.extend(_first_strings(items))
    return turns, observations


def _first_strings(items: Iterable[object]) -> list[str]:
    out: list[str] = []
    for item in items:
        if isinstance(item, list) and item and isinstance(item[0], str):
            out.append(item[0])
        elif isinstance(item, str):
            out.append(item)
    return out


def main() -> None:
    """Print the rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locomo", type=Path, help="a LoCoMo-format JSON file (never committed)")
    args = parser.parse_args()
    _benign("benign insights (dev)", corpus.BENIGN_DEV)
    _benign("benign insights (held out)", corpus.BENIGN_HELDOUT)
    _benign("calibrate_dedup learnings", _calibration_texts())
    if args.locomo:
        turns, observations = _locomo(args.locomo)
        _benign("LoCoMo turns", turns)
        _benign("LoCoMo observations", observations)
    _hostile("hostile (dev)", corpus.MUST_FLAG)
    _hostile("hostile (held out)", corpus.MUST_FLAG_HELDOUT)


if __name__ == "__main__":
    main()
