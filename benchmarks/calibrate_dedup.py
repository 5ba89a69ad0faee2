"""Calibrate the near-duplicate threshold of write-time deduplication.

Embeds labelled pairs of short learnings with an embedder (the default MiniLM unless ``--hash``),
prints the cosine distributions of paraphrases (the same fact, reworded: should merge) and of
different facts (a different value of the same attribute, or a different fact on the same topic:
must not merge), and the precision/recall of merging at each threshold. The threshold in
``learning_machines.curation.NEAR_DUPLICATE_THRESHOLD`` is the lowest one with no false merge on
this set, rounded up.

    python benchmarks/calibrate_dedup.py
"""

from __future__ import annotations

import argparse

import numpy as np

from learning_machines.curation import NEAR_DUPLICATE_THRESHOLD, distinguishing
from learning_machines.embedders import Embedder, HashEmbedder, MiniLMEmbedder

PARAPHRASES: list[tuple[str, str]] = [
    ("The user lives in London.", "User lives in London"),
    ("User prefers dark mode in the editor.", "The user likes using dark mode in their editor."),
    ("Alice works at Acme Corp.", "Alice is employed by Acme Corp."),
    ("The user is allergic to peanuts.", "User has a peanut allergy."),
    ("User's favourite language is Python.", "The user's favorite programming language is Python."),
    (
        "The deploy script needs AWS credentials.",
        "AWS credentials are required by the deploy script.",
    ),
    ("User has two children.", "The user has 2 kids."),
    ("Bob is the team lead of the data team.", "Bob leads the data team."),
    ("The user is vegetarian.", "User doesn't eat meat; they are vegetarian."),
    (
        "User wants answers in bullet points.",
        "The user prefers responses formatted as bullet points.",
    ),
    ("The project uses PostgreSQL 16.", "Project database: PostgreSQL 16."),
    ("User's birthday is on 3 May.", "The user was born on May 3rd."),
    ("The user is learning Spanish.", "User is currently studying Spanish."),
    ("Run the tests with pytest -x before committing.", "Before committing, run pytest -x."),
    ("User drives a Tesla Model 3.", "The user's car is a Tesla Model 3."),
    ("Carol is Alice's manager.", "Alice reports to Carol."),
    ("User works remotely on Fridays.", "On Fridays the user works from home."),
    ("The API rate limit is 100 requests per minute.", "API is rate limited to 100 req/min."),
    ("User plays tennis every weekend.", "The user plays tennis on weekends."),
    ("The user's timezone is CET.", "User is in the CET time zone."),
    ("Dave is a senior backend engineer.", "Dave works as a senior backend engineer."),
    ("User dislikes long meetings.", "The user doesn't like long meetings."),
    ("The office is closed on public holidays.", "On public holidays the office is closed."),
    ("User uses VS Code as their editor.", "The user's editor is VS Code."),
    ("The user has a cat named Miso.", "User's cat is called Miso."),
    ("Staging deploys happen every Tuesday.", "We deploy to staging every Tuesday."),
    ("The user is training for a marathon.", "User is preparing to run a marathon."),
    ("User's preferred coffee is a flat white.", "The user likes flat whites best."),
    ("The user speaks German and French.", "User speaks French and German."),
    ("Eve is on parental leave until June.", "Eve is on parental leave until June"),
]

DIFFERENT: list[tuple[str, str]] = [
    # same attribute, different value (contradictions: supersession, never a merge)
    ("The user lives in London.", "The user lives in Berlin."),
    ("Alice works at Acme Corp.", "Alice works at Globex."),
    ("User's favourite language is Python.", "User's favourite language is Rust."),
    ("User has two children.", "User has three children."),
    ("The project uses PostgreSQL 16.", "The project uses MySQL 8."),
    ("User drives a Tesla Model 3.", "User drives a Volkswagen Golf."),
    ("The user's timezone is CET.", "The user's timezone is PST."),
    ("User prefers dark mode in the editor.", "User prefers light mode in the editor."),
    (
        "The API rate limit is 100 requests per minute.",
        "The API rate limit is 1000 requests per minute.",
    ),
    ("User's birthday is on 3 May.", "User's birthday is on 12 October."),
    ("Bob is the team lead of the data team.", "Bob is the team lead of the platform team."),
    ("The user has a cat named Miso.", "The user has a dog named Miso."),
    ("Staging deploys happen every Tuesday.", "Staging deploys happen every Thursday."),
    ("The user is learning Spanish.", "The user is learning Japanese."),
    ("User works remotely on Fridays.", "User works remotely on Mondays."),
    ("Eve is on parental leave until June.", "Eve is on parental leave until September."),
    ("The user is vegetarian.", "The user is vegan."),
    ("User's preferred coffee is a flat white.", "User's preferred coffee is an espresso."),
    ("Dave is a senior backend engineer.", "Dave is a junior frontend engineer."),
    ("User plays tennis every weekend.", "User plays golf every weekend."),
    # same topic, different fact
    ("The user lives in London.", "The user was born in London."),
    ("Alice works at Acme Corp.", "Alice founded Acme Corp."),
    ("User has two children.", "User's children go to the same school."),
    ("The user is allergic to peanuts.", "The user is allergic to cats."),
    ("User uses VS Code as their editor.", "User uses Vim keybindings."),
    ("Carol is Alice's manager.", "Carol is Bob's manager."),
    ("The deploy script needs AWS credentials.", "The deploy script runs database migrations."),
    ("Run the tests with pytest -x before committing.", "Run the linter before committing."),
    ("User dislikes long meetings.", "User dislikes early meetings."),
    ("The user speaks German and French.", "The user is learning German."),
]


def cosines(embedder: Embedder, pairs: list[tuple[str, str]]) -> np.ndarray:
    left = embedder.embed([a for a, _ in pairs])
    right = embedder.embed([b for _, b in pairs])
    return np.asarray(np.sum(left * right, axis=1), dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hash", action="store_true", help="use HashEmbedder instead of MiniLM")
    args = parser.parse_args()
    embedder: Embedder = HashEmbedder() if args.hash else MiniLMEmbedder()
    same = cosines(embedder, PARAPHRASES)
    diff = cosines(embedder, DIFFERENT)
    contradictions = diff[:20]
    print(f"embedder: {embedder.name}")
    for label, values in (
        ("paraphrases", same),
        ("different value", contradictions),
        ("different fact", diff[20:]),
    ):
        print(
            f"{label:>16}: n={len(values):2d} min={values.min():.3f} "
            f"median={np.median(values):.3f} max={values.max():.3f}"
        )
    # The lexical guards of write_learning: a guarded pair is never merged on similarity alone.
    same_ok = np.array([not distinguishing(a, b) for a, b in PARAPHRASES])
    diff_ok = np.array([not distinguishing(a, b) for a, b in DIFFERENT])
    print(f"\n{'threshold':>9} {'cosine only':>22} {'cosine + guards':>22}")
    print(f"{'':>9} {'merged':>10} {'false':>11} {'merged':>10} {'false':>11}")
    for t in np.arange(0.70, 1.0001, 0.025):
        print(
            f"{t:9.3f} {int(np.sum(same >= t)):>7d}/{len(same):<2d} "
            f"{int(np.sum(diff >= t)):>8d}/{len(diff):<2d} "
            f"{int(np.sum((same >= t) & same_ok)):>7d}/{len(same):<2d} "
            f"{int(np.sum((diff >= t) & diff_ok)):>8d}/{len(diff):<2d}"
        )
    safe = float(diff.max())
    guarded_safe = float(diff[diff_ok].max()) if diff_ok.any() else 0.0
    print(f"\ncosine only: no false merge above {safe:.3f}")
    print(f"cosine + guards: no false merge above {guarded_safe:.3f}")
    t = NEAR_DUPLICATE_THRESHOLD
    print(
        f"at the library default {t:.2f}: {int(np.sum((same >= t) & same_ok))}/{len(same)} "
        f"paraphrases merged, {int(np.sum((diff >= t) & diff_ok))}/{len(diff)} false merges"
    )
    worst = sorted(zip(diff, DIFFERENT, strict=True), key=lambda x: -x[0])[:5]
    print("\nclosest different facts:")
    for value, (a, b) in worst:
        print(f"  {value:.3f}  {a!r} vs {b!r}")


if __name__ == "__main__":
    main()
