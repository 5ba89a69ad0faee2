"""``bench qa``'s plumbing, with scripted models: who sees what, the budget, the cache, resuming.

The data are written here (never the real, CC BY-NC LoCoMo file). Reference answers are markers
that occur nowhere in the conversations, so finding one in a request proves the request was
given the reference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai import messages as pa
from pydantic_ai.messages import ModelMessagesTypeAdapter
from pydantic_ai.models.function import AgentInfo, FunctionModel
from typer.testing import CliRunner

from learning_machines.bench._qa_data import ABSTENTION, load_longmemeval, load_qa_data
from learning_machines.bench._qa_grading import is_dont_know
from learning_machines.bench.qa import run_qa, select
from learning_machines.cli import _app
from learning_machines.exceptions import ConfigurationError, ModelError, ValidationError

GOLD = {
    "What did Ann bake for the fair?": ("GOLD-ALPHA-17", 4),
    "When did Bob run the race?": ("GOLD-BRAVO-23", 2),
    "Which two hobbies does Ann have?": ("GOLD-CHARLIE-31", 1),
    "What would Bob study?": ("GOLD-DELTA-47", 3),
}
TRAP = "TRAP-ECHO-59"
LINES = [
    "I baked a lemon cake for the school fair on Saturday.",
    "I ran the city half marathon last weekend, finally under two hours!",
    "Besides baking I have been learning the cello and doing pottery.",
    "I keep reading about rivers and rocks; maybe geology one day.",
    "The weather was lovely at the lake yesterday.",
    "My neighbour's dog barked all night again.",
]


def _sample(sample_id: str, sessions: int = 4) -> dict[str, Any]:
    conv: dict[str, Any] = {"speaker_a": "Ann", "speaker_b": "Bob"}
    for n in range(1, sessions + 1):
        conv[f"session_{n}"] = [
            {
                "speaker": "Ann" if i % 2 == 0 else "Bob",
                "dia_id": f"D{n}:{i + 1}",
                "text": f"{LINES[(n + i) % len(LINES)]} ({sample_id} session {n}, turn {i + 1})",
            }
            for i in range(8)
        ]
        conv[f"session_{n}_date_time"] = f"10:00 am on {n + 1} June, 2023"
    qa: list[dict[str, Any]] = [
        {"question": q, "answer": f"{gold}-{sample_id}", "evidence": ["D1:1"], "category": category}
        for q, (gold, category) in GOLD.items()
    ]
    qa.append(
        {
            "question": "What did Ann say about Mars?",
            "adversarial_answer": f"{TRAP}-{sample_id}",
            "evidence": [],
            "category": 5,
        }
    )
    return {"sample_id": sample_id, "conversation": conv, "qa": qa}


@pytest.fixture
def qa_file(tmp_path: Path) -> Path:
    path = tmp_path / "qa-locomo.json"
    path.write_text(json.dumps([_sample("conv-x"), _sample("conv-y")]), encoding="utf-8")
    return path


class Recorder:
    """A FunctionModel body that keeps every request as text and answers as scripted."""

    def __init__(self, answer: str = "A lemon cake.", verdict: str = "CORRECT") -> None:
        self.requests: list[str] = []
        self.answer = answer
        self.verdict = verdict
        self.fail_after: int | None = None

    def model(self, name: str) -> FunctionModel:
        return FunctionModel(self._respond, model_name=name)

    def _respond(self, messages: list[pa.ModelMessage], info: AgentInfo) -> pa.ModelResponse:
        if self.fail_after is not None and len(self.requests) >= self.fail_after:
            raise RuntimeError("provider unavailable")
        self.requests.append(ModelMessagesTypeAdapter.dump_json(messages).decode())
        if info.output_tools:
            args = {"reason": "scripted", "verdict": self.verdict}
            return pa.ModelResponse(parts=[pa.ToolCallPart(info.output_tools[0].name, args)])
        return pa.ModelResponse(parts=[pa.TextPart(self.answer)])


def run(data: Path, out: Path, answerer: Recorder, judge: Recorder, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"embedder": "hash", "progress": False, "out_dir": out}
    options.update(kwargs)
    return run_qa(data, model=answerer.model("answerer"), judge=judge.model("judge"), **options)


def test_the_judge_sees_the_reference_and_the_answerer_never_does(qa_file, tmp_path):
    answerer, judge = Recorder(), Recorder()
    report = run(qa_file, tmp_path / "out", answerer, judge)

    assert report["data"]["questions"] == 10  # every question, adversarial ones included
    assert len(answerer.requests) == 10
    for request in answerer.requests:
        assert "GOLD-" not in request
        assert TRAP not in request
    for request in judge.requests:
        assert "GOLD-" in request or TRAP in request
    assert sum(TRAP in r for r in judge.requests) == 2  # the trap is shown for category 5
    assert all("UNANSWERABLE" in r for r in judge.requests if TRAP in r)
    # Each judge request carries its own question's reference, not another's.
    for question, (gold, _) in GOLD.items():
        asked = [r for r in judge.requests if question in r]
        assert len(asked) == 2
        assert sum(f"{gold}-conv-x" in r for r in asked) == 1
        assert sum(f"{gold}-conv-y" in r for r in asked) == 1
    assert report["accuracy"]["overall"]["accuracy"] == 1.0  # the scripted judge said so
    assert set(report["accuracy"]["by_category"]) == {
        "multi-hop",
        "temporal",
        "open-domain",
        "single-hop",
        "adversarial",
    }


@pytest.mark.parametrize("budget", [200, 600])
def test_the_context_budget_is_respected(qa_file, tmp_path, budget):
    answerer, judge = Recorder(), Recorder()
    report = run(qa_file, tmp_path / "out", answerer, judge, budget=budget)

    assert report["context_tokens"]["budget"] == budget
    assert 0 < report["context_tokens"]["max"] <= budget
    for request in answerer.requests:
        prompt = json.loads(request)[-1]["parts"][-1]["content"]
        context = prompt.split("Memory excerpts:\n", 1)[1].rsplit("\n\nQuestion:", 1)[0]
        assert (len(context) + 3) // 4 <= budget
        assert context.startswith("<learned_context>")
    # 64 turns of about 20 tokens each: a budget this small is filled, not left empty.
    assert report["context_tokens"]["mean"] > budget / 2


def test_a_budget_too_small_for_the_wrapper_is_refused_before_any_call(qa_file, tmp_path):
    answerer, judge = Recorder(), Recorder()
    with pytest.raises(ConfigurationError, match="too small"):
        run(qa_file, tmp_path / "out", answerer, judge, budget=10)
    assert answerer.requests == []


def test_a_rerun_makes_no_model_call(qa_file, tmp_path):
    first_answerer, first_judge = Recorder(), Recorder()
    first = run(qa_file, tmp_path / "out", first_answerer, first_judge)
    answerer, judge = Recorder(), Recorder()
    again = run(qa_file, tmp_path / "out", answerer, judge)

    assert answerer.requests == []
    assert judge.requests == []
    assert again["models"]["answer"]["calls"] == 0
    assert again["models"]["answer"]["cached"] == first["models"]["answer"]["calls"] == 10
    assert again["models"]["judge"]["all_input_tokens"] == first["models"]["judge"]["input_tokens"]
    assert again["accuracy"] == first["accuracy"]


def test_an_interrupted_run_resumes_where_it_stopped(qa_file, tmp_path):
    answerer, judge = Recorder(), Recorder()
    answerer.fail_after = 6
    with pytest.raises(ModelError, match="run the same command again to resume"):
        run(qa_file, tmp_path / "out", answerer, judge, concurrency=1)
    assert len(answerer.requests) == 6
    assert len(judge.requests) == 6

    answerer, judge = Recorder(), Recorder()
    report = run(qa_file, tmp_path / "out", answerer, judge, concurrency=1)
    assert len(answerer.requests) == 4  # only the questions not answered before
    assert len(judge.requests) == 4
    assert report["models"]["answer"]["cached"] == 6
    assert report["data"]["questions"] == 10


def test_i_dont_know_is_right_only_where_the_conversation_cannot_answer(qa_file, tmp_path):
    answerer, judge = Recorder(answer="I don't know."), Recorder()
    report = run(qa_file, tmp_path / "out", answerer, judge)

    assert judge.requests == []  # graded by rule, never left to a lenient judge
    assert report["graded_by"]["rule"] == 10
    by_category = report["accuracy"]["by_category"]
    assert by_category["adversarial"]["accuracy"] == 1.0
    for name in ("multi-hop", "temporal", "open-domain", "single-hop"):
        assert by_category[name]["accuracy"] == 0.0
    assert report["accuracy"]["overall"]["correct"] == 2


def test_an_adversarial_question_with_a_real_answer_is_graded_against_it(tmp_path):
    sample = _sample("conv-w", sessions=1)
    sample["qa"] = [
        {
            "question": "Is Oscar Ann's pet?",
            "answer": "GOLD-NO-7",
            "adversarial_answer": "Yes",
            "category": 5,
            "evidence": ["D1:1"],
        }
    ]
    path = tmp_path / "odd.json"
    path.write_text(json.dumps([sample]), encoding="utf-8")
    (question,) = load_qa_data(path).conversations[0].questions
    assert question.category == "adversarial"
    assert not question.abstain
    assert question.answer == "GOLD-NO-7"

    answerer, judge = Recorder(answer="I don't know."), Recorder()
    report = run(path, tmp_path / "out", answerer, judge)
    assert report["accuracy"]["overall"]["correct"] == 0  # abstaining is wrong where it is known


def test_dont_know_detection_is_exact():
    assert is_dont_know("I don't know.")
    assert is_dont_know("i dont know")
    assert is_dont_know("I don\u2019t know!")
    assert not is_dont_know("I don't know, maybe Paris.")
    assert not is_dont_know("Paris")


def test_an_unreadable_verdict_counts_as_wrong_and_the_run_goes_on(qa_file, tmp_path):
    answerer, judge = Recorder(), Recorder(verdict="PROBABLY")
    report = run(qa_file, tmp_path / "out", answerer, judge, questions=2, conversations=1)

    assert report["graded_by"]["judge-error"] == 2
    assert report["accuracy"]["overall"]["correct"] == 0


def test_quick_spreads_questions_over_categories(qa_file, tmp_path):
    answerer, judge = Recorder(), Recorder()
    report = run(qa_file, tmp_path / "out", answerer, judge, questions=3)

    assert report["data"]["questions"] == 6
    per_conversation = {q["category"] for q in report["questions"] if q["id"].startswith("conv-x")}
    assert len(per_conversation) == 3  # three categories, not the first three questions' one


# --- LongMemEval ---------------------------------------------------------------------------


def _lme(qid: str, question: str, answer: str, qtype: str) -> dict[str, Any]:
    return {
        "question_id": qid,
        "question_type": qtype,
        "question": question,
        "answer": answer,
        "question_date": "2023/06/01 (Thu) 09:00",
        # Oracle-style: sessions not in time order.
        "haystack_session_ids": ["s_late", "s_early"],
        "haystack_dates": ["2023/05/20 (Sat) 02:21", "2023/05/02 (Tue) 18:05"],
        "haystack_sessions": [
            [
                {
                    "role": "user",
                    "content": "I adopted a cat and named her Miso.",
                    "has_answer": True,
                },
                {"role": "assistant", "content": "Congratulations on adopting Miso!"},
            ],
            [
                {"role": "user", "content": "I started a new job as a nurse."},
                {"role": "assistant", "content": ""},
                {"role": "assistant", "content": "That is great news."},
            ],
        ],
        "answer_session_ids": ["s_late"],
    }


@pytest.fixture
def lme_file(tmp_path: Path) -> Path:
    data = [
        _lme("q1", "What is my cat called?", "GOLD-MISO-1", "single-session-user"),
        _lme(
            "q2_abs", "What is my dog called?", "You did not mention a dog.", "single-session-user"
        ),
    ]
    path = tmp_path / "longmemeval_s.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_longmemeval_loader_reads_the_published_fields(lme_file):
    data = load_qa_data(lme_file)

    assert data.format == "longmemeval"
    assert [c.id for c in data.conversations] == ["q1", "q2_abs"]
    conv = data.conversations[0]
    assert [e.text for e in conv.episodes] == [
        "I started a new job as a nurse.",
        "That is great news.",  # the empty turn is skipped
        "I adopted a cat and named her Miso.",
        "Congratulations on adopting Miso!",
    ]
    assert [e.speaker for e in conv.episodes] == ["user", "assistant", "user", "assistant"]
    assert conv.episodes[0].session_id == "q1/s_early"
    assert conv.episodes[2].at.day == 20
    assert conv.episodes[2].at.hour == 2
    question = conv.questions[0]
    assert question.category == "single-session-user"
    assert not question.abstain
    assert question.asked_at is not None
    assert question.asked_at.month == 6
    abstain = data.conversations[1].questions[0]
    assert abstain.abstain
    assert abstain.category == ABSTENTION
    assert data.categories == ("single-session-user", ABSTENTION)


def test_longmemeval_run_keeps_each_history_to_its_question(lme_file, tmp_path):
    answerer, judge = Recorder(answer="Miso."), Recorder()
    report = run(lme_file, tmp_path / "out", answerer, judge)

    assert report["run"]["format"] == "longmemeval"
    assert report["data"]["questions"] == 2
    assert all("GOLD-MISO-1" not in r for r in answerer.requests)
    assert any("GOLD-MISO-1" in r for r in judge.requests)
    assert "Miso" in answerer.requests[0]  # the history was recalled for its question
    assert all("UNANSWERABLE" in r for r in judge.requests if "What is my dog" in r)


def test_longmemeval_quick_spreads_histories_over_question_types():
    types = ["single-session-user", "multi-session", "temporal-reasoning", "knowledge-update"]
    data = load_longmemeval(
        [_lme(f"q{i}", "?", "a", types[i % 2 if i < 6 else i % 4]) for i in range(9)]
    )

    quick = select(data, quick=True, conversations=None, questions=None)
    assert len(quick) == 5
    assert len({c.questions[0].category for c in quick}) == 4
    assert len(select(data, quick=False, conversations=None, questions=None)) == 9
    assert len(select(data, quick=False, conversations=2, questions=None)) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ([{"hello": 1}], "not a LoCoMo file"),
        ([{"question_id": "q", "haystack_sessions": []}], "has no 'question'"),
        (
            [{**_lme("q", "?", "a", "x"), "haystack_sessions": [["hi"], ["there"]]}],
            "must be a list of sessions",
        ),
        ([{**_lme("q", "?", "a", "x"), "haystack_dates": ["soon", "later"]}], "unreadable"),
        ("not json at all {", "is not JSON"),
    ],
)
def test_confused_input_gets_a_clear_error(tmp_path, content, message):
    path = tmp_path / "data.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ValidationError, match=message):
        load_qa_data(path)


def test_longmemeval_mismatched_lengths_are_refused():
    bad = _lme("q", "?", "a", "multi-session")
    bad["haystack_dates"] = bad["haystack_dates"][:1]
    with pytest.raises(ValidationError, match="must match one to one"):
        load_longmemeval([bad])


# --- the command line ------------------------------------------------------------------------


def test_bench_qa_quick_command_line(qa_file, tmp_path):
    out = tmp_path / "out"
    args = ["bench", "qa", "--model", "test", "--judge", "test", "--data", str(qa_file)]
    args += ["--quick", "--embedder", "hash", "--out", str(out)]
    result = CliRunner().invoke(_app.app, args)

    assert result.exit_code == 0, result.output
    report = json.loads((out / "qa.json").read_text())
    assert report["data"]["conversations"] == 1
    assert report["models"]["answer"]["calls"] == 5
    assert "Answer accuracy (QA)" in result.output
    assert "say nothing about memory quality" in result.output
    assert (out / "qa-cache.jsonl").exists()


def test_bench_qa_with_a_learning_model_learns_each_session(qa_file, tmp_path):
    answerer, judge = Recorder(), Recorder()
    report = run(
        qa_file,
        tmp_path / "out",
        answerer,
        judge,
        conversations=1,
        questions=2,
        learn_model="test",
    )
    assert report["models"]["learning"]["calls"] == 4  # one extraction call per session
    assert report["learning_failures"] == 0
    assert report["run"]["stores"] == ["episodic_memory", "user_profile", "entity_memory"]


def test_failed_learning_is_reported_not_silent(tmp_path, caplog):
    path = tmp_path / "one-session.json"
    path.write_text(json.dumps([_sample("conv-z", sessions=1)]), encoding="utf-8")

    def broken(messages: list[pa.ModelMessage], info: AgentInfo) -> pa.ModelResponse:
        raise RuntimeError("learning provider down")

    answerer, judge = Recorder(), Recorder()
    report = run(
        path, tmp_path / "out", answerer, judge, questions=1, learn_model=FunctionModel(broken)
    )

    assert report["learning_failures"] == 1
    assert "learning work that failed: 1" in (tmp_path / "out" / "qa.md").read_text()
    assert "learning failed for conv-z" in caplog.text
    assert report["data"]["questions"] == 1  # the questions were still asked, on episodes


def test_bench_qa_names_the_option_of_an_unknown_model(qa_file, tmp_path):
    args = ["bench", "qa", "--model", "test", "--judge", "nosuch:model", "--data", str(qa_file)]
    args += ["--quick", "--embedder", "hash", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(_app.app, args)

    assert result.exit_code == 2
    assert "--judge 'nosuch:model'" in result.output
    assert not (tmp_path / "out" / "qa.json").exists()
