"""Text for agents: results cut to a size cap (saying so), proposals as lines (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from ..db import Proposal

__all__ = ["cap_text", "proposals_text"]


def cap_text(text: str, cap: int) -> str:
    """``text``, or its first ``cap`` characters and a line saying how much was left out."""
    if len(text) <= cap:
        return text
    note = f"\n[… {len(text) - cap} more characters left out; ask a narrower question]"
    return text[: max(0, cap - len(note))] + note


def proposals_text(proposals: Sequence[Proposal]) -> str:
    """One line per proposal: id, mode, store, when, and what it would save."""
    if not proposals:
        return "No proposals are waiting for approval."
    lines = [f"{len(proposals)} proposal(s) waiting for approval:"]
    for p in proposals:
        lines.append(
            f"- {p.id} [{p.mode.upper()}, {p.store}, {p.created_at:%Y-%m-%d %H:%M}] {p.summary}"
        )
    lines.append("Approve or reject them in the review UI or with `learning-machines proposals`.")
    return "\n".join(lines)
