"""Measure episodic-memory ranking ideas one at a time on a LoCoMo-format file.

    LEARNING_MACHINES_BENCH_EMBED_CACHE=/tmp/lm-emb.pkl \
        python benchmarks/ablations.py --data ../shared/data/locomo-dev.json base ctx1 ...

Prints turn-level R@10 (and the other metrics) of the store's search for each named variant,
next to the BM25 and dense baselines of the same run, and R@10 / NDCG@10 on the tuning and
held-out splits (the last two conversations are held out). Choose on the tuning split only.
The embedding cache (outside the repo: vectors are derived from the data) makes repeated runs
cheap.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import timedelta

from learning_machines.bench.retrieval import run_retrieval
from learning_machines.stores._episode_ranking import EpisodeRanking

PLAIN = EpisodeRanking.plain()
BEST = EpisodeRanking()

VARIANTS: dict[str, EpisodeRanking] = {
    "plain": PLAIN,
    "cand100": replace(PLAIN, candidates=100),
    "kw0.2": replace(PLAIN, candidates=100, keyword_weight=0.2),
    "kw0.4": replace(PLAIN, candidates=100, keyword_weight=0.4),
    "kw0.5": replace(PLAIN, candidates=100, keyword_weight=0.5),
    "kw0.6": replace(PLAIN, candidates=100, keyword_weight=0.6),
    "kw0.7": replace(PLAIN, candidates=100, keyword_weight=0.7),
    "nb0.6": replace(PLAIN, candidates=100, neighbour_weight=0.6),
    "kw0.5+nb0.4": replace(PLAIN, candidates=100, keyword_weight=0.5, neighbour_weight=0.4),
    "kw0.5+nb0.4+sp": replace(
        PLAIN, candidates=100, keyword_weight=0.5, neighbour_weight=0.4, speaker_boost=0.3
    ),
    "ctx1+kw0.5+nb0.4": replace(
        PLAIN, candidates=100, keyword_weight=0.5, neighbour_weight=0.4, context_turns=1
    ),
    "kw0.8": replace(PLAIN, candidates=100, keyword_weight=0.8),
    "kw0.7+nb0.4": replace(PLAIN, candidates=100, keyword_weight=0.7, neighbour_weight=0.4),
    "ctx1+kw0.7+nb0.4": replace(
        PLAIN, candidates=100, keyword_weight=0.7, neighbour_weight=0.4, context_turns=1
    ),
    "ctx1+kw0.7+nb0.2": replace(
        PLAIN, candidates=100, keyword_weight=0.7, neighbour_weight=0.2, context_turns=1
    ),
    "ctx1+kw0.5+nb0.2": replace(
        PLAIN, candidates=100, keyword_weight=0.5, neighbour_weight=0.2, context_turns=1
    ),
    "strip": replace(PLAIN, candidates=100, strip_query=True),
    "when": replace(PLAIN, candidates=100, when_terms=True),
    "speaker0.3": replace(PLAIN, candidates=100, speaker_boost=0.3),
    "nb0.2": replace(PLAIN, candidates=100, neighbour_weight=0.2),
    "nb0.4": replace(PLAIN, candidates=100, neighbour_weight=0.4),
    "nb0.4w2": replace(
        PLAIN, candidates=100, neighbour_weight=0.4, neighbour_window=timedelta(minutes=2)
    ),
    "ctx1": replace(PLAIN, candidates=100, context_turns=1),
    "ctx2": replace(PLAIN, candidates=100, context_turns=2),
    "date": replace(PLAIN, candidates=100, date_in_text=True),
    "default": BEST,
    "default+sp": replace(BEST, speaker_boost=0.3),
    "default-ctx": replace(BEST, context_turns=0),
    "default+sp0.6": replace(BEST, speaker_boost=0.6),
    "default+sp1.0": replace(BEST, speaker_boost=1.0),
    "default+sp1.5": replace(BEST, speaker_boost=1.5),
    "default-cap": replace(BEST, context_cap=None),
    "default-time": replace(BEST, time_boost=0.0),
    "default+nb0.4": replace(BEST, neighbour_weight=0.4),
    "default+kw0.7": replace(BEST, keyword_weight=0.7),
    "default-date": replace(BEST, date_boost=0.0),
    "default+kw0.4": replace(BEST, keyword_weight=0.4),
    "default+kw0.3": replace(BEST, keyword_weight=0.3),
    "default-nb": replace(BEST, neighbour_weight=0.0),
    "default-sp": replace(BEST, speaker_boost=0.0),
    "default+cand300": replace(BEST, candidates=300),
    "default+kw0.5": replace(BEST, keyword_weight=0.5),
    "default+date1.0": replace(BEST, date_boost=1.0),
    "default+date3.0": replace(BEST, date_boost=3.0),
    "default+lag0": replace(BEST, date_lag=timedelta(0)),
    "default+lag7": replace(BEST, date_lag=timedelta(days=7)),
    "before": replace(
        BEST,
        keyword_weight=0.7,
        neighbour_weight=0.4,
        speaker_boost=1.0,
        time_boost=0.0,
        date_boost=0.0,
        context_cap=None,
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--held-out", type=int, default=2)
    parser.add_argument(
        "--backend", default="sqlite", help="sqlite, or postgres ($LEARNING_MACHINES_BENCH_PG_URL)"
    )
    parser.add_argument("--out", default="/tmp/lm-ablations")
    parser.add_argument("variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    for name in args.variants:
        r = run_retrieval(
            args.data,
            out_dir=f"{args.out}/{name}",
            quick=args.quick,
            held_out=args.held_out,
            backend=args.backend,
            ranking=VARIANTS[name],
            plot=False,
        )
        s = r["systems"]
        row = {
            "variant": name,
            "ours": {k: round(v, 3) for k, v in s["learning-machines"]["overall"].items()},
            "per_cat_R@10": {c: round(s["learning-machines"][c]["R@10"], 3) for c in "1234"},
            "plain": round(s["plain hybrid"]["overall"]["R@10"], 3),
            "bm25": round(s["BM25"]["overall"]["R@10"], 3),
            "dense": round(s["dense"]["overall"]["R@10"], 3),
            "splits": {
                split: {
                    k: round(part["systems"]["learning-machines"]["overall"][k], 3)
                    for k in ("R@1", "R@10", "NDCG@10")
                }
                for split, part in r["splits"].items()
            },
            "seconds": r["run"]["seconds"],
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
