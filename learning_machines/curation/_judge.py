"""A judge for the near duplicates similarity cannot decide, asked once per curation run.

Cosine similarity with lexical guards merges only what it is sure of (see :mod:`._write`):
"Cache: Warm the cache before load tests" and "Cache warming: Before load tests, warm the
cache" fall in between (cosine 0.75-0.88, or a guard fired) and stay twice. A
:class:`DedupJudge` decides those pairs. :class:`ModelJudge` asks a language model about all the
uncertain pairs of a curation run in **one** call and reports what it cost
(:class:`JudgeCost`, in :class:`~learning_machines.curation.CurationReport`).

Which pairs are uncertain (pure, :func:`band_pairs`): pairs of one scope with a cosine from
:data:`DEFAULT_JUDGE_BAND` up to :data:`JUDGE_SURE`, and guarded pairs above it; exact
duplicates and pairs with different conflict keys are never asked about. With a judge, its
verdict decides every pair it was asked about, also those similarity alone would have merged:
"Jack prefers Slack, not email" / "Jack prefers email, not Slack" (cosine 0.96, no guard fires)
is a pair similarity cannot be trusted with. Verbatim episodes are never judged: a turn said
twice was said twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, Field

from ..db import Learning, normalize_text
from ._similar import distinguishing

__all__ = [
    "DEFAULT_JUDGE_BAND",
    "JUDGE_SURE",
    "MAX_JUDGED_PAIRS",
    "DedupJudge",
    "JudgeCost",
    "JudgePair",
    "JudgeVerdict",
    "ModelJudge",
    "band_pairs",
]

#: Lowest cosine handed to a judge. On ``benchmarks/calibrate_dedup.py`` (MiniLM) all 30
#: tuning paraphrases and 29 of the 30 held-out ones lie at or above it.
DEFAULT_JUDGE_BAND = 0.6
#: With a judge, pairs at or above this cosine (and not guarded) merge without asking; no
#: different-fact pair of the calibration set (tuning or held-out) reaches it (max 0.967).
JUDGE_SURE = 0.97
#: The most pairs one curation run asks about (the closest first); the rest wait for the next run.
MAX_JUDGED_PAIRS = 200
_BLOCK = 512
#: Learning types never merged by a judge: episodes are verbatim.
_NEVER_JUDGED = frozenset({"episode"})


@dataclass(frozen=True, kw_only=True)
class JudgePair:
    """Two learnings of one scope that may say the same thing."""

    keep: Learning
    """The older learning (kept if they are merged)."""
    other: Learning
    """The newer learning (folded into ``keep`` if they are merged)."""
    similarity: float
    """Their cosine similarity."""
    guarded: bool
    """A lexical guard fired (a value or slot differs): similarity alone could not merge them."""


@dataclass(frozen=True, kw_only=True)
class JudgeCost:
    """What judging cost in one curation run."""

    judge: str
    """Which judge (``"model:<name>"`` for a language model)."""
    calls: int
    """Calls made (one per run with pairs to judge, zero without)."""
    pairs: int
    """Pairs judged."""
    same: int
    """Pairs judged the same fact."""
    skipped: int = 0
    """Uncertain pairs not asked about this run (over :data:`MAX_JUDGED_PAIRS`)."""
    input_tokens: int = 0
    """Input tokens reported by the model (0 when it reports none)."""
    output_tokens: int = 0
    """Output tokens reported by the model."""


@dataclass(frozen=True, kw_only=True)
class JudgeVerdict:
    """A judge's answer for a batch of pairs."""

    same: tuple[bool, ...]
    """One verdict per pair, in order: ``True`` when the two say the same fact."""
    input_tokens: int = 0
    """Input tokens the judging cost."""
    output_tokens: int = 0
    """Output tokens the judging cost."""
    calls: int = 1
    """Calls it took."""


@runtime_checkable
class DedupJudge(Protocol):
    """Decides, for a batch of uncertain pairs, which are the same fact."""

    name: str
    """Shown in the :class:`JudgeCost` of a run."""

    async def ajudge(self, pairs: Sequence[JudgePair]) -> JudgeVerdict:
        """One verdict per pair, in order; one call for the whole batch."""
        ...


class _Same(BaseModel):
    same: list[int] = Field(
        description="Numbers of the pairs whose two statements state the same fact."
    )


_INSTRUCTIONS = (
    "You deduplicate a memory store. Each numbered pair holds two statements. A pair is the "
    "same fact when both say the same thing: a rewording, a reordering, a title-style summary "
    "of the other, or one adds detail to the other without contradicting it. It is NOT the same "
    "fact when any value differs: a number, date, day, time, person, place, name, product, "
    "version, or an opposite word (light/dark, before/after, add/remove). When unsure, leave it "
    "out. Answer with the numbers of the pairs that are the same fact."
)


class ModelJudge:
    """A language model as the judge: every uncertain pair of a run in one structured call.

    ``model`` is a pydantic-ai model or a ``"provider:name"`` string, resolved at the first call
    (a curation run with nothing uncertain makes no call). The call's token usage is reported;
    a failed call makes the run raise :class:`~learning_machines.exceptions.ModelError` before it
    writes anything.
    """

    def __init__(self, model: str | Any) -> None:
        self.model = model
        label = model if isinstance(model, str) else getattr(model, "model_name", type(model))
        self.name = f"model:{label}"
        self._agent: Any = None

    async def ajudge(self, pairs: Sequence[JudgePair]) -> JudgeVerdict:
        """Ask the model about ``pairs`` in one call."""
        if not pairs:
            return JudgeVerdict(same=(), calls=0)
        if self._agent is None:
            from pydantic_ai import Agent

            self._agent = Agent(self.model, output_type=_Same, instructions=_INSTRUCTIONS)
        prompt = "\n".join(
            f"{n}. A: {_one_line(p.keep.search_text)}\n   B: {_one_line(p.other.search_text)}"
            for n, p in enumerate(pairs, start=1)
        )
        result = await self._agent.run(prompt)
        chosen = {int(n) for n in result.output.same}
        usage = result.usage
        return JudgeVerdict(
            same=tuple(n in chosen for n in range(1, len(pairs) + 1)),
            input_tokens=int(usage.input_tokens or 0),
            output_tokens=int(usage.output_tokens or 0),
        )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _key(learning: Learning) -> str | None:
    raw = learning.content.get("conflict_key")
    if raw is None or raw == "":
        return None
    return f"{learning.entity_id or ''}\x00{normalize_text(str(raw))}"


def band_pairs(rows: Sequence[Learning], *, low: float, high: float) -> list[JudgePair]:
    """The pairs of ``rows`` (one scope, oldest first) that only a judge can decide.

    A pair is uncertain when its cosine is at least ``low`` and either below ``high`` or
    guarded (:func:`~learning_machines.curation.distinguishing`). Exact duplicates, pairs
    embedded by different embedders, pairs with different conflict keys, and episodes are left
    out. Each newer row is paired with every older one; closest pairs first.
    """
    usable = [
        r
        for r in rows
        if r.embedding is not None and r.learning_type not in _NEVER_JUDGED and r.search_text
    ]
    if len(usable) < 2:
        return []
    matrix = np.asarray([r.embedding for r in usable], dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1)
    norms[norms == 0] = 1.0
    unit = matrix / norms[:, None]
    out: list[JudgePair] = []
    for start in range(0, len(usable), _BLOCK):  # blocks keep memory flat in large scopes
        stop = min(start + _BLOCK, len(usable))
        block = unit[start:stop] @ unit[:stop].T
        for j, i in zip(*np.nonzero(block >= low), strict=True):
            j, i = int(j) + start, int(i)
            if i >= j:
                continue
            a, b = usable[i], usable[j]
            if a.content_hash == b.content_hash or a.embedder != b.embedder:
                continue
            ka, kb = _key(a), _key(b)
            if ka is not None and kb is not None and ka != kb:
                continue
            sim = float(block[j - start, i])
            guarded = distinguishing(a.search_text, b.search_text)
            if sim < high or guarded:
                out.append(JudgePair(keep=a, other=b, similarity=sim, guarded=guarded))
    out.sort(key=lambda p: (-p.similarity, p.keep.id, p.other.id))
    return out
