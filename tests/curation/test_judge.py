"""The near-duplicate judge: uncertain pairs of a curation run, asked in one batched call.

The judging model here is scripted (it marks the pairs its script names), so these tests check
the plumbing: which pairs are asked, one call per run, merges and cost in the report. The
quality of a real language model as judge is not measured offline (benchmarks/calibrate_dedup.py
says so).
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from learning_machines.curation import (
    Curator,
    JudgePair,
    JudgeVerdict,
    ModelJudge,
    band_pairs,
)
from learning_machines.db import Db, Learning, PutLearning
from learning_machines.embedders import default_embedder
from learning_machines.exceptions import ModelError
from learning_machines.testing import ScriptedModel

from ._helpers import CREATE, active, note

EMB = default_embedder()  # the band is calibrated for the default embedder (offline MiniLM)
# cosine 0.74 with MiniLM: below the merge threshold (0.88), inside the judged band (0.6)
PARAPHRASE = (
    "User wants answers in bullet points.",
    "The user prefers responses formatted as bullet points.",
)
DIFFERENT = ("User's favourite language is Python.", "User's favourite language is Rust.")


def put(db: Db, learning: Learning) -> Learning:
    vector = tuple(float(x) for x in EMB.embed([learning.search_text])[0])
    return db.run(
        PutLearning(learning=replace(learning, embedding=vector, embedder=EMB.name), change=CREATE)
    )


def same_when_about_bullets(prompt: str, schema: dict) -> dict:
    """A scripted judge: pairs whose first statement is about bullet points are 'the same'."""
    pairs = re.findall(r"^(\d+)\. A: (.*)$", prompt, flags=re.MULTILINE)
    return {"same": [int(n) for n, a in pairs if "bullet" in a.lower()]}


def bullet_pairs(prompt: str) -> list[int]:
    """The scripted judge's answer: the numbers of the pairs about bullet points."""
    return list(same_when_about_bullets(prompt, {})["same"])


def judge_calls(model: ScriptedModel) -> int:
    return sum(1 for call in model.calls if call.kind == "judge")


def seed(db: Db, user: str = "alice") -> None:
    for text in (*PARAPHRASE, *DIFFERENT, "The user has a dog called Rex"):
        put(db, note(text, user))


async def test_without_a_judge_the_paraphrase_stays_twice(db: Db) -> None:
    seed(db)
    report = await Curator(db=db, embedder=EMB).acurate()
    assert report.merged == []
    assert report.judge is None
    assert {x.search_text for x in active(db)} >= set(PARAPHRASE)


async def test_a_judging_model_merges_the_paraphrase_not_the_other_fact_in_one_call(db: Db) -> None:
    seed(db, "alice")
    seed(db, "bob")  # a second scope: still one call for the whole run
    model = ScriptedModel(judge=bullet_pairs)
    curator = Curator(db=db, embedder=EMB, judge=ModelJudge(model))

    report = await curator.acurate()

    assert judge_calls(model) == 1
    for user in ("alice", "bob"):
        texts = {x.search_text for x in active(db, user)}
        assert len(texts & set(PARAPHRASE)) == 1  # merged into one row
        assert set(DIFFERENT) <= texts  # Python and Rust both kept
    assert len(report.merged) == 2
    assert all(m.reason.startswith("judged the same fact") for m in report.merged)
    cost = report.judge
    assert cost is not None
    assert cost.judge == "model:scripted"
    assert cost.calls == 1
    assert cost.same == 2
    assert cost.pairs >= 4  # the paraphrase and the Python/Rust pair, in each scope
    assert cost.input_tokens > 0
    assert "judge model:scripted: 2/" in report.summary()
    # the model was shown every uncertain pair in that one prompt
    prompt = model.calls[0].prompt
    assert prompt.count("Rust") == 2
    assert prompt.count("formatted as bullet points") == 2

    again = await curator.acurate()
    assert again.merged == []
    assert again.judge is not None
    assert again.judge.same == 0
    assert judge_calls(model) == 2  # one more call, for the pairs still uncertain


async def test_nothing_uncertain_no_call(db: Db) -> None:
    put(db, note("The user has a dog called Rex"))
    put(db, note("Staging deploys happen every Tuesday."))
    model = ScriptedModel(judge=bullet_pairs)
    report = await Curator(db=db, embedder=EMB, judge=ModelJudge(model)).acurate()
    assert judge_calls(model) == 0
    assert report.judge is not None
    assert (report.judge.calls, report.judge.pairs) == (0, 0)


async def test_a_failing_judge_raises_and_writes_nothing(db: Db) -> None:
    seed(db)
    before = sorted(x.id for x in active(db))
    model = ScriptedModel(judge=bullet_pairs, fail_extractions=10)
    with pytest.raises(ModelError, match="judge model:scripted failed"):
        await Curator(db=db, embedder=EMB, judge=ModelJudge(model)).acurate()
    assert sorted(x.id for x in active(db)) == before


class Miscounting:
    name = "miscounting"

    async def ajudge(self, pairs: list[JudgePair]) -> JudgeVerdict:
        return JudgeVerdict(same=(True,))


async def test_a_judge_answering_the_wrong_number_of_verdicts_is_refused(db: Db) -> None:
    seed(db)
    with pytest.raises(ModelError, match="verdicts for"):
        await Curator(db=db, embedder=EMB, judge=Miscounting()).acurate()
    assert {x.search_text for x in active(db)} >= set(PARAPHRASE)


def _rows(texts: list[str], learning_type: str = "note") -> list[Learning]:
    vectors = EMB.embed(texts)
    return [
        replace(
            note(t, embedding=tuple(float(x) for x in v), embedder=EMB.name),
            learning_type=learning_type,
        )
        for t, v in zip(texts, vectors, strict=True)
    ]


def test_band_selection() -> None:
    rows = _rows([*PARAPHRASE, *DIFFERENT, "The user has a dog called Rex"])
    pairs = band_pairs(rows, low=0.6, high=0.97)
    asked = {(p.keep.search_text, p.other.search_text) for p in pairs}
    assert PARAPHRASE in asked  # below the threshold: uncertain
    assert DIFFERENT in asked  # above it but guarded (Python/Rust): uncertain
    assert all("Rex" not in a + b for a, b in asked)  # unrelated: never asked
    assert [p.similarity for p in pairs] == sorted((p.similarity for p in pairs), reverse=True)
    # exact duplicates and verbatim episodes are never judged
    assert band_pairs(_rows([PARAPHRASE[0], PARAPHRASE[0]]), low=0.6, high=0.97) == []
    assert band_pairs(_rows(list(PARAPHRASE), "episode"), low=0.6, high=0.97) == []
    # a pair sure on similarity alone is not asked
    sure = _rows(["The user lives in London.", "The user lives in London"])
    assert band_pairs(sure, low=0.6, high=0.97) == []


async def test_the_judge_also_decides_pairs_similarity_alone_would_wrongly_merge(db: Db) -> None:
    # cosine 0.96 and no guard fires: without a judge curation merges them (a wrong merge)
    slack = (
        "Jack prefers to be contacted on Slack, not email.",
        "Jack prefers to be contacted by email, not Slack.",
    )
    for text in slack:
        put(db, note(text, "alice"))
        put(db, note(text, "bob"))
    alone = await Curator(db=db, embedder=EMB).acurate(user_id="bob")
    assert len(alone.merged) == 1
    model = ScriptedModel(judge=bullet_pairs)  # says: not the same
    report = await Curator(db=db, embedder=EMB, judge=ModelJudge(model)).acurate(user_id="alice")
    assert report.merged == []
    assert {x.search_text for x in active(db, "alice")} == set(slack)
    assert report.judge is not None
    assert (report.judge.pairs, report.judge.same) == (1, 0)


def test_a_machine_with_a_model_asks_it_during_its_curation_runs(db: Db) -> None:
    from learning_machines import LearningMachine, LearningMode
    from learning_machines.stores import LearnedKnowledgeConfig

    model = ScriptedModel(judge=bullet_pairs)
    machine = LearningMachine(
        db=db,
        model=model,
        embedder=EMB,
        learned_knowledge=LearnedKnowledgeConfig(mode=LearningMode.AGENTIC, namespace="eng"),
        background=False,
    )
    turn = machine.begin("x", user_id="alice", session_id="s")
    for text in PARAPHRASE:
        turn.tools.call("save_learning", {"title": "Format", "learning": text})
    assert len(turn.tools.call("search_learnings", {"query": "bullet points"}).splitlines()) == 2
    report = machine.service.curate()
    assert report.judge is not None
    assert report.judge.calls == 1
    assert len(report.merged) == 1
    assert judge_calls(model) == 1
    assert len(turn.tools.call("search_learnings", {"query": "bullet points"}).splitlines()) == 1
    off = LearningMachine(
        db=db, model=model, embedder=EMB, learned_knowledge=True, dedup_judge=False,
        background=False,
    )  # fmt: skip
    assert off.service.curate().judge is None
