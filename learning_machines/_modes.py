"""How a store learns: the four learning modes."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["LearningMode"]


class LearningMode(StrEnum):
    """How a store learns. Every mode is enforced in code, not only described in a prompt.

    - ``BACKGROUND``: after each turn the machine extracts learnings (one model call for all
      background stores); the answer never waits for it. The agent gets read-only tools.
    - ``AGENTIC``: the agent decides, through write tools (``update_user_profile``,
      ``save_learning`` …); nothing is extracted in the background.
    - ``PROPOSE``: the agent's writes become proposals; the user approves them through the API or
      in a *later* turn of the same session. Unapproved proposals are never recalled.
    - ``HITL``: like ``PROPOSE``, but only a reviewer other than the conversing user approves,
      through the API or the CLI; the agent has no tool that approves.
    """

    BACKGROUND = "background"
    AGENTIC = "agentic"
    PROPOSE = "propose"
    HITL = "hitl"

    @property
    def needs_approval(self) -> bool:
        """Whether writes in this mode become proposals."""
        return self in (LearningMode.PROPOSE, LearningMode.HITL)
