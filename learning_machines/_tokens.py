"""Token budgets without a tokenizer dependency (pure)."""

from __future__ import annotations

__all__ = ["estimate_tokens", "truncate_to_tokens"]

#: English text averages about four characters per token for GPT-style tokenizers.
CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """Approximate number of tokens in ``text`` (ceil of characters / 4)."""
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """Cut ``text`` at a line boundary so it fits ``max_tokens``; mark the cut with ``…``."""
    if max_tokens <= 0:
        return ""
    if estimate_tokens(text) <= max_tokens:
        return text
    budget = max_tokens * CHARS_PER_TOKEN
    kept: list[str] = []
    used = 0
    for line in text.splitlines():
        if used + len(line) + 1 > budget - 1:
            break
        kept.append(line)
        used += len(line) + 1
    return "\n".join([*kept, "…"]) if kept else text[: budget - 1] + "…"
