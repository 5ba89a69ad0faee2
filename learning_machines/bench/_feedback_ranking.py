"""How far should feedback move search ranking? Measured per ``StoreConfig.feedback_weight``.

Topics of shared knowledge each hold one misleading learning (the most relevant to the topic's
questions) and three good ones, among filler learnings. Users ask each topic's questions round
after round; the agent acts on the top learning it recalls; acting on the misleading one goes
wrong and the user rates the turn down, anything else goes right and is rated up — with some
ratings the wrong way round (noise). No curation runs, so only ranking moves things.

Per weight: the failure rate per round (the misleading learning still ranked first); after the
last round, how many good learnings are still recalled (top three per topic; fewer means
feedback noise pushed good ones out) and how many recalled learnings are off the topic asked
about (evidence from other topics outranking relevance: the cost of too large a weight).
"""

from __future__ import annotations

import asyncio
import random
import statistics
from pathlib import Path
from typing import Any

from .._modes import LearningMode
from ..feedback import FeedbackConfig
from ..machine import LearningMachine
from ..stores import LearnedKnowledgeConfig
from ..stores.decision_log import DecisionLogConfig
from ._backends import open_bench_db

__all__ = ["WEIGHTS", "ranking_table", "run_ranking"]

#: Feedback weights compared (0: feedback does not touch ranking).
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 2.0)
#: Shares of ratings given the wrong way round.
NOISE = (0.1, 0.3)

_TOPICS = (
    "deploy the billing service",
    "rotate the api keys",
    "restore a database backup",
    "renew the tls certificates",
    "scale the search cluster",
    "migrate the user table",
    "purge the cdn cache",
    "onboard a new engineer",
)
_GOOD = (
    "Follow the runbook step by step and check the dashboards after each step when you {t}.",
    "Announce it in the team channel and name who is on call before you {t}.",
    "Keep the previous version ready so you can roll back in minutes if you {t}.",
)
# The misleading one reads most like an answer to the questions (closest by words and meaning).
_BAD = "How should I {t}? Do it all in one go."
_FILLER = (
    "Lunch orders close at eleven on Fridays.",
    "The office plants are watered on Mondays.",
    "Expense reports need a receipt photo.",
    "The design team prefers dark mode mockups.",
    "Parking permits renew every January.",
    "The wifi password rotates each quarter.",
)
_QUESTIONS = ("How should I {t}?", "What is the right way to {t}?", "I need to {t}, any advice?")


async def _one(
    weight: float, *, embedder: Any, backend: str, workdir: Path, rounds: int, topics: int,
    noise: float, seed: int,
) -> dict[str, Any]:  # fmt: skip
    rng = random.Random(seed)
    bench_db = open_bench_db(backend, workdir)
    try:
        config = LearnedKnowledgeConfig(
            mode=LearningMode.AGENTIC, namespace="team", limit=3, feedback_weight=weight
        )
        machine = LearningMachine(
            db=bench_db.db,
            embedder=embedder,
            learned_knowledge=config,
            feedback=FeedbackConfig(lessons=False),
            decision_log=DecisionLogConfig(mode=LearningMode.AGENTIC),
            background=False,
            curate_every_turns=None,
        )
        seed_turn = await machine.abegin("seed", user_id="ops", session_id="seed")
        ids: dict[str, dict[str, Any]] = {}
        chosen = _TOPICS[:topics]
        for t in chosen:
            for text, bad in [(_BAD, True), *((g, False) for g in _GOOD)]:
                said = await seed_turn.tools.acall(
                    "save_learning", {"title": t, "learning": text.format(t=t)}
                )
                ids[said.split("(")[-1].rstrip(")")] = {"topic": t, "misleading": bad}
        for i, text in enumerate(_FILLER * 3):
            await seed_turn.tools.acall("save_learning", {"title": f"note {i}", "learning": text})
        failures: list[float] = []
        for r in range(rounds):
            bad_turns = total = 0
            for t in chosen:
                for u in range(2):
                    question = rng.choice(_QUESTIONS).format(t=t)
                    turn = await machine.abegin(
                        question, user_id=f"u{u}", session_id=f"{t}-{r}-{u}"
                    )
                    recalled = turn.learned.recalled.get("learned_knowledge") or []
                    top = recalled[0].learning if recalled else None
                    answer = (top.content.get("learning", "") if top else "") or "No idea."
                    await turn.afinish([question, {"role": "assistant", "content": answer}])
                    went_wrong = bool(top and ids.get(top.id, {}).get("misleading"))
                    verdict = not went_wrong if rng.random() >= noise else went_wrong
                    await machine.afeedback(
                        turn_id=turn.context.turn_id, score=1.0 if verdict else -1.0
                    )
                    bad_turns += went_wrong
                    total += 1
            failures.append(bad_turns / total)
        dropped = off_topic = 0
        for t in chosen:
            turn = await machine.abegin(f"How should I {t}?", user_id="probe", session_id="p")
            recalled = {s.learning.id for s in turn.learned.recalled.get("learned_knowledge") or []}
            dropped += sum(
                1
                for i, info in ids.items()
                if info["topic"] == t and not info["misleading"] and i not in recalled
            )
            off_topic += sum(1 for i in recalled if ids.get(i, {}).get("topic") != t)
    finally:
        bench_db.close()
    return {
        "weight": weight,
        "noise": noise,
        "failure_rate_per_round": [round(x, 3) for x in failures],
        "rounds_to_stop_failing": next((i + 1 for i, x in enumerate(failures) if x <= noise), None),
        "good_out_of_top3": dropped,
        "off_topic_recalled": off_topic,
        "good_total": topics * len(_GOOD),
    }


def run_ranking(
    *, embedder: Any, backend: str, workdir: Path, quick: bool, seed: int
) -> dict[str, Any]:
    """Run the experiment for every weight in :data:`WEIGHTS` and noise in :data:`NOISE`."""
    rounds = 4 if quick else 8
    topics = 3 if quick else len(_TOPICS)
    settings: dict[str, Any] = {
        "embedder": embedder,
        "backend": backend,
        "workdir": workdir,
        "rounds": rounds,
        "topics": topics,
        "seed": seed,
    }
    rows = [
        asyncio.run(_one(w, noise=noise, **settings))
        for noise in (NOISE[:1] if quick else NOISE)
        for w in WEIGHTS
    ]
    return {"rounds": rounds, "topics": topics, "weights": rows}


def ranking_table(data: dict[str, Any]) -> str:
    """The experiment as a markdown table."""
    rounds = data["rounds"]
    lines = [
        f"{data['topics']} topics × 2 users × {rounds} rounds; the agent acts on its top recalled "
        "learning; noise: the share of ratings given the wrong way round; no curation.",
        "",
        "| noise | weight | failure rate per round | mean | good recalled at the end | "
        "off-topic recalled |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for row in data["weights"]:
        rates = row["failure_rate_per_round"]
        lines.append(
            f"| {row['noise']:.0%} | {row['weight']:g} | {' '.join(f'{x:.2f}' for x in rates)} | "
            f"{statistics.mean(rates):.2f} | "
            f"{row['good_total'] - row['good_out_of_top3']} of {row['good_total']} | "
            f"{row['off_topic_recalled']} |"
        )
    return "\n".join(lines)
