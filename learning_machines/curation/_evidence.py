"""Outcome evidence of a learning as a confidence (pure, no I/O).

Feedback credits each learning a turn recalled with that turn's outcome: ``helpful`` and
``harmful`` are trust-weighted counts. The confidence that a learning helps is the mean of a
Beta posterior with a uniform prior, ``(1 + helpful) / (2 + helpful + harmful)``: 0.5 with no
evidence, moving towards 0 or 1 as outcomes accumulate, and slowly when there are few.
"""

from __future__ import annotations

from ..db import Learning

__all__ = ["evidence_score", "has_evidence", "helpfulness", "strongly_harmful"]


def helpfulness(learning: Learning) -> float:
    """Posterior mean of the chance that ``learning`` helps (Beta(1, 1) prior), in ``(0, 1)``."""
    helpful = max(0.0, learning.helpful)
    harmful = max(0.0, learning.harmful)
    return (1.0 + helpful) / (2.0 + helpful + harmful)


def evidence_score(learning: Learning) -> float:
    """:func:`helpfulness` mapped to ``(-1, 1)``: 0 without evidence, negative when it misled."""
    return 2.0 * helpfulness(learning) - 1.0


def has_evidence(learning: Learning) -> bool:
    """Whether any outcome was credited to ``learning``."""
    return learning.helpful > 0 or learning.harmful > 0


def strongly_harmful(learning: Learning, *, min_evidence: float, below: float) -> bool:
    """At least ``min_evidence`` harmful outcomes, and a helpfulness under ``below``."""
    return learning.harmful >= min_evidence and helpfulness(learning) < below
