"""A small, differently styled test set: a user talking to an assistant, in LoCoMo format.

LoCoMo is two friends chatting, who name each other and whose questions name them too. An
agent's memory mostly holds something else: one user talking to an assistant about work and
errands, in the first person, with long assistant answers, asked later in the first person
("Which Postgres version did I say billing runs on?"). This module writes such a set so that the
episodic ranking can be checked on a style it was not tuned on.

It is written by hand for this project (no third-party data): two conversations, 16 sessions
each, 32 facts each stated once by the user among related distractors (the same topic with
another value, in another session) and small talk, and one question per fact (single-hop,
temporal, multi-hop over two facts, open-domain). Questions reword the facts rather than
repeat them. It is small and synthetic: a check of generalisation, not a benchmark of record.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["assistant_chats", "write_assistant_chats"]

# (session, user turn, question, category, answer); the question's evidence is that turn.
# Multi-hop questions (category 1) also need an earlier fact: the ``hops`` of a conversation map
# a fact's index to the earlier fact's.
_Fact = tuple[int, str, str, int, str]

_PRIYA: list[_Fact] = [
    (
        1,
        "Billing finally runs on Postgres 16 since the migration on Monday.",
        "Which database version does the billing service use now?",
        4,
        "Postgres 16",
    ),
    (
        1,
        "My manager is Daniela, she took over the platform team in spring.",
        "Who is my manager?",
        4,
        "Daniela",
    ),
    (
        2,
        "We agreed the on-call rotation switches every Wednesday at noon.",
        "When does the on-call handover happen?",
        2,
        "Wednesdays at noon",
    ),
    (
        2,
        "The flaky test is test_refund_rounding, it fails about once in twenty runs.",
        "Which test keeps failing intermittently?",
        4,
        "test_refund_rounding",
    ),
    (
        3,
        "I'm flying to Lisbon on the 14th for the data conference.",
        "Where am I travelling for the conference?",
        4,
        "Lisbon",
    ),
    (
        3,
        "Our error budget for checkout is 0.1 percent of requests per month.",
        "What reliability target did we set for checkout?",
        3,
        "0.1% errors per month",
    ),
    (
        4,
        "I switched my editor to Helix last week, the modal editing grew on me.",
        "Which code editor am I using these days?",
        4,
        "Helix",
    ),
    (
        4,
        "The search service p95 went from 480 ms down to 120 ms after adding the cache.",
        "How much faster did search get after the cache?",
        4,
        "480 to 120 ms p95",
    ),
    (
        5,
        "Kenji from security wants every service to rotate secrets every 30 days.",
        "How often must secrets be rotated, and who asked for it?",
        4,
        "30 days, Kenji",
    ),
    (
        5,
        "I started learning Rust in the evenings, chapter six of the book so far.",
        "What programming language am I teaching myself?",
        4,
        "Rust",
    ),
    (
        6,
        "The quarterly planning offsite got moved to the 3rd of October.",
        "When is the planning offsite now?",
        2,
        "3 October",
    ),
    (
        6,
        "We picked Kafka over RabbitMQ for the events pipeline, mostly for replay.",
        "Why did we choose our message broker?",
        3,
        "Kafka, for replay",
    ),
    (
        7,
        "My laptop died, IT gave me a loaner ThinkPad until the new one arrives.",
        "What happened to my computer?",
        4,
        "died; loaner ThinkPad",
    ),
    (
        7,
        "The invoice PDF bug was a timezone issue, dates rendered in UTC not local time.",
        "What caused the invoice date problem?",
        4,
        "timezone: UTC instead of local",
    ),
    (
        8,
        "I'm mentoring Aisha, she joined as a junior engineer two weeks ago.",
        "Who am I mentoring?",
        4,
        "Aisha",
    ),
    (
        8,
        "The staging cluster is still on Kubernetes 1.27, prod is on 1.29.",
        "Which Kubernetes version is prod running?",
        4,
        "1.29",
    ),
    (
        9,
        "I have a dentist appointment Thursday morning so I'll start late.",
        "Why will I be late on Thursday?",
        4,
        "dentist appointment",
    ),
    (
        9,
        "The vendor quoted 18,000 euros a year for the observability platform.",
        "How much does the observability tool cost per year?",
        4,
        "18,000 euros",
    ),
    (
        10,
        "We decided to deprecate the v1 API at the end of March.",
        "When will the old API version be switched off?",
        2,
        "end of March",
    ),
    (
        10,
        "My standing desk broke, so I ordered a new frame from Flexispot.",
        "What did I buy for my desk?",
        4,
        "a Flexispot frame",
    ),
    (
        11,
        "The team voted to keep retros every two weeks instead of weekly.",
        "How often do we hold retrospectives?",
        4,
        "every two weeks",
    ),
    (
        11,
        "I'm allergic to shellfish, remind me when we book the team dinner.",
        "What should be avoided when booking the team dinner?",
        3,
        "shellfish",
    ),
    (
        12,
        "Marco is leaving the company at the end of the month, he's moving to Berlin.",
        "Which colleague is leaving and where is he going?",
        4,
        "Marco, Berlin",
    ),
    (
        12,
        "The load test showed the gateway saturates at about 9,000 requests per second.",
        "At what throughput does the gateway max out?",
        4,
        "about 9,000 rps",
    ),
    (
        13,
        "Yesterday I presented the cost report to the leadership team.",
        "When did I present the cost report?",
        2,
        "the day before session 13",
    ),
    (
        13,
        "We cut the cloud bill by 22 percent by moving batch jobs to spot instances.",
        "How did we lower cloud spending?",
        4,
        "spot instances, 22%",
    ),
    (
        14,
        "My daughter starts school next week, so I'll leave at four on Tuesdays.",
        "Why do I leave early on Tuesdays?",
        3,
        "daughter's school",
    ),
    (
        14,
        "The new hire for the data team, Oluwaseun, starts on the 2nd.",
        "Who is joining the data team?",
        4,
        "Oluwaseun",
    ),
    (
        15,
        "The postmortem found the outage came from an expired TLS certificate.",
        "What caused the outage?",
        4,
        "expired TLS certificate",
    ),
    (
        15,
        "I'm switching to the four-day week pilot from next month.",
        "What change to my working schedule is coming?",
        4,
        "four-day week pilot",
    ),
    (
        16,
        "Our SLO dashboard now lives in Grafana, the old Datadog one is gone.",
        "Where do I look at the SLO dashboards?",
        4,
        "Grafana",
    ),
    (
        16,
        "For the migration I estimated three sprints, Daniela said four.",
        "How long did my manager expect the migration to take?",
        1,
        "four sprints; Daniela",
    ),
]

_PRIYA_DISTRACTORS: list[tuple[int, str]] = [
    (3, "The analytics replica is still on Postgres 13, we'll upgrade it later."),
    (5, "Before Daniela, the platform team was run by Steve for a few years."),
    (9, "The old on-call rotation used to switch on Mondays, which nobody liked."),
    (8, "I skipped the Berlin conference this year, too much going on."),
    (11, "The checkout latency target is 300 ms at p95, separate from errors."),
    (12, "I used VS Code for years before trying anything else."),
    (2, "Search used to time out at 2 seconds before we tuned the indexes."),
    (13, "Security also wants MFA on every admin account by the summer."),
    (14, "I tried learning Go last year but dropped it after a month."),
    (15, "The summer offsite was in Porto, that one went fine."),
    (1, "We looked at NATS too but it felt too new for the team."),
    (10, "My old laptop was a MacBook, the battery was dying anyway."),
    (4, "The PDF export also had a font problem, fixed in March."),
    (6, "Aisha sits with the payments team, not with us."),
    (9, "Staging and prod were both on 1.25 a year ago."),
    (7, "My physiotherapy sessions are on Friday afternoons."),
    (16, "The logging vendor was cheaper, around 6,000 euros."),
    (2, "The v2 API launched in January with the new auth flow."),
]

_TOMAS: list[_Fact] = [
    (
        1,
        "We booked the cabin in Asturias for the first week of August.",
        "Where are we staying in the summer?",
        4,
        "a cabin in Asturias",
    ),
    (
        1,
        "My sister Lucía is getting married in Seville in June.",
        "Whose wedding is coming up, and where?",
        4,
        "Lucía, Seville",
    ),
    (
        2,
        "The boiler was serviced on Tuesday, the technician said the valve is worn.",
        "What did the heating technician find?",
        4,
        "a worn valve",
    ),
    (
        2,
        "I'm training for the half marathon in Valencia, long runs on Sundays.",
        "Which race am I preparing for?",
        4,
        "Valencia half marathon",
    ),
    (
        3,
        "Our son Mateo has a peanut allergy, we carry an EpiPen everywhere.",
        "What must we pack for Mateo on every outing?",
        3,
        "an EpiPen",
    ),
    (
        3,
        "I teach chemistry to the year ten classes this term.",
        "Which subject do I teach?",
        4,
        "chemistry",
    ),
    (
        4,
        "The car insurance renewal is due on the 21st, 640 euros this year.",
        "How much is the car insurance renewal?",
        4,
        "640 euros",
    ),
    (
        4,
        "We adopted a grey cat from the shelter and named her Niebla.",
        "What is our cat called?",
        4,
        "Niebla",
    ),
    (
        5,
        "My knee has been sore since the trail run, the physio said to rest two weeks.",
        "What did the physio recommend for my knee?",
        4,
        "two weeks rest",
    ),
    (
        5,
        "We switched to a vegetarian diet at home on weekdays.",
        "What did we change about our weekday meals?",
        4,
        "vegetarian on weekdays",
    ),
    (
        6,
        "Parents' evening at Mateo's school is next Thursday at six.",
        "When is the school parents' evening?",
        2,
        "next Thursday at six",
    ),
    (
        6,
        "I finally finished the bookshelf, it's oak with a walnut stain.",
        "What wood did I use for the shelf?",
        4,
        "oak, walnut stain",
    ),
    (
        7,
        "My mother moved into the flat downstairs from us last month.",
        "Where does my mother live now?",
        4,
        "the flat downstairs",
    ),
    (
        7,
        "We're saving for solar panels, the quote was 7,200 euros installed.",
        "How much would solar panels cost us?",
        4,
        "7,200 euros",
    ),
    (
        8,
        "The school trip to the science museum is on the 9th, I'm a chaperone.",
        "What role do I have on the museum trip?",
        4,
        "chaperone",
    ),
    (
        8,
        "I started learning the guitar, my teacher is called Rosa.",
        "Who teaches me the guitar?",
        4,
        "Rosa",
    ),
    (
        9,
        "Our internet provider is now Digi, much cheaper than before.",
        "Which internet company do we use?",
        4,
        "Digi",
    ),
    (
        9,
        "Mateo joined the swimming club, training is Monday and Wednesday.",
        "On which days does Mateo have swimming?",
        2,
        "Monday and Wednesday",
    ),
    (
        10,
        "We sold the old Seat Ibiza and bought a used electric Kona.",
        "What car do we drive now?",
        4,
        "a used electric Kona",
    ),
    (
        10,
        "My best friend Andrés moved to Montreal for a postdoc.",
        "Which friend moved abroad, and where?",
        4,
        "Andrés, Montreal",
    ),
    (
        11,
        "The landlord agreed to fix the leaking window before winter.",
        "What did the landlord promise to repair?",
        4,
        "the leaking window",
    ),
    (
        11,
        "I got the head of department position, starting in September.",
        "What promotion did I get?",
        4,
        "head of department",
    ),
    (
        12,
        "Yesterday we ran the half marathon, I finished in 1 hour 52.",
        "What was my finishing time in the race?",
        4,
        "1:52",
    ),
    (
        12,
        "Niebla had her vaccinations at the vet on Friday.",
        "When did the cat get vaccinated?",
        2,
        "Friday before session 12",
    ),
    (
        13,
        "We're hosting Christmas this year, twelve people for dinner.",
        "How many guests are coming for Christmas dinner?",
        4,
        "twelve",
    ),
    (
        13,
        "I've been sleeping badly, the doctor suggested no screens after ten.",
        "What advice did the doctor give about sleep?",
        4,
        "no screens after ten",
    ),
    (
        14,
        "The bank approved the loan for the kitchen renovation.",
        "What is the loan for?",
        4,
        "the kitchen renovation",
    ),
    (
        14,
        "Mateo wants to be an astronaut now, he reads about Mars every night.",
        "What does my son want to be?",
        4,
        "an astronaut",
    ),
    (
        15,
        "My colleague Inés is covering my classes while I'm at the training course.",
        "Who covers my lessons during the course?",
        4,
        "Inés",
    ),
    (
        15,
        "The kitchen builders start on the 15th and expect five weeks.",
        "How long will the kitchen work take?",
        4,
        "five weeks",
    ),
    (
        16,
        "We're thinking of visiting Andrés in the spring holidays.",
        "Which friend might we visit, and in which city?",
        1,
        "Andrés, Montreal",
    ),
    (
        16,
        "Lucía's wedding went beautifully, the dinner was in an old olive mill.",
        "Where was the dinner of my sister's wedding held?",
        1,
        "an old olive mill; Seville",
    ),
]

_TOMAS_DISTRACTORS: list[tuple[int, str]] = [
    (5, "Last summer we stayed at a hotel in Cádiz, too hot in July."),
    (8, "My cousin Pilar got married two years ago in Granada."),
    (11, "The radiators in the bedroom still make a knocking noise."),
    (13, "I ran the 10k in Madrid last spring, it was my first race."),
    (2, "I taught physics for a couple of years before chemistry."),
    (9, "The home insurance is with the same company, due in March."),
    (3, "The neighbours have a black cat that visits our balcony."),
    (14, "My shoulder was the problem last year, not the knee."),
    (16, "Mateo's old school had parents' evenings on Tuesdays."),
    (7, "The old bookshelf was pine and fell apart in the move."),
    (12, "My father still lives in the village near León."),
    (1, "We got a quote for a heat pump too, far more expensive."),
    (15, "I tried piano lessons as a teenager but gave up."),
    (10, "Our previous internet provider was Movistar."),
    (4, "The first car we had was a red Renault Clio."),
    (6, "Andrés used to live two streets away from us."),
    (13, "The bathroom was renovated the year we moved in."),
    (11, "My brother is the one who likes football, not me."),
]

_SMALL_TALK: list[str] = [
    "Morning! Coffee first, then let's get going.",
    "Thanks, that helps a lot.",
    "Sorry, I got pulled into a meeting, where were we?",
    "Can you keep that short? I only have five minutes.",
    "Ok, makes sense.",
    "Let me think about it and come back to you later.",
    "Great, I'll do that this afternoon.",
    "Hmm, not sure about that one.",
    "That's all for today, thanks!",
    "Can you draft a quick message for me about it?",
]

_ANSWERS: list[str] = [
    "Noted. If it helps, I can keep track of that and remind you when it becomes relevant.",
    "Got it. A short checklist might make the next steps easier; shall I write one?",
    "Thanks for telling me. I'll keep it in mind for anything we plan around it.",
    "Understood. Do you want me to summarise the options you have from here?",
    "That sounds reasonable. The main risk is timing, so it may be worth a reminder.",
    "Okay. If anything changes, tell me and I'll update what I know.",
    "Good to know. Many people find it easier to plan a week ahead for things like this.",
    "Sure. Let me know if you'd like a draft, a plan or just a reminder.",
]


def _conversation(
    sample_id: str,
    user: str,
    facts: list[_Fact],
    distractors: list[tuple[int, str]],
    hops: dict[int, int],
    seed: int,
) -> dict[str, Any]:
    rng = random.Random(seed)
    start = datetime(2024, 1, 8, 9, 30)
    sessions: dict[int, list[tuple[str, str, str | None]]] = {}  # speaker, text, fact key
    for n in range(1, 17):
        sessions[n] = []
    items: list[tuple[int, str, str | None]] = [
        (s, t, f"f{i}") for i, (s, t, *_r) in enumerate(facts)
    ]
    items += [(s, t, None) for s, t in distractors]
    for n in range(1, 17):
        mine = [(t, k) for s, t, k in items if s == n]
        talk = rng.sample(_SMALL_TALK, 2)
        turns: list[tuple[str, str | None]] = [(talk[0], None), *mine, (talk[1], None)]
        rng.shuffle(turns[1:-1])
        for text, key in turns:
            sessions[n].append((user, text, key))
            sessions[n].append(("assistant", rng.choice(_ANSWERS), None))
    conv: dict[str, Any] = {"speaker_a": user, "speaker_b": "assistant"}
    where: dict[str, str] = {}
    for n, said in sessions.items():
        when = start + timedelta(days=9 * (n - 1) + rng.randint(0, 3), minutes=rng.randint(0, 400))
        hour = when.hour % 12 or 12
        conv[f"session_{n}_date_time"] = (
            f"{hour}:{when.minute:02d} {'am' if when.hour < 12 else 'pm'} on "
            f"{when.day} {when.strftime('%B')}, {when.year}"
        )
        conv[f"session_{n}"] = []
        for i, (speaker, text, key) in enumerate(said, start=1):
            dia = f"D{n}:{i}"
            conv[f"session_{n}"].append({"speaker": speaker, "dia_id": dia, "text": text})
            if key:
                where[key] = dia
    qa: list[dict[str, Any]] = []
    for i, (_s, _t, question, category, answer) in enumerate(facts):
        evidence = [where[f"f{i}"]]
        if i in hops:  # a multi-hop question also needs the earlier fact it builds on
            evidence.insert(0, where[f"f{hops[i]}"])
        qa.append(
            {"question": question, "answer": answer, "evidence": evidence, "category": category}
        )
    return {"sample_id": sample_id, "conversation": conv, "qa": qa}


def assistant_chats() -> list[dict[str, Any]]:
    """The two conversations as LoCoMo-format samples (deterministic)."""
    return [
        _conversation("chat-priya", "Priya", _PRIYA, _PRIYA_DISTRACTORS, {31: 1}, seed=1),
        _conversation("chat-tomas", "Tomás", _TOMAS, _TOMAS_DISTRACTORS, {30: 19, 31: 1}, seed=2),
    ]


def write_assistant_chats(path: str | Path) -> Path:
    """Write :func:`assistant_chats` to ``path`` as JSON; returns the path."""
    out = Path(path)
    out.write_text(json.dumps(assistant_chats(), ensure_ascii=False, indent=1), "utf-8")
    return out


if __name__ == "__main__":  # python -m learning_machines.bench._assistant_chats OUT.json
    import sys

    print(write_assistant_chats(sys.argv[1] if len(sys.argv) > 1 else "assistant-chats.json"))
