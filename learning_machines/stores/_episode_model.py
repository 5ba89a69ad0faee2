"""What episodic memory keeps and finds: an utterance, and an utterance found by a search."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Episode", "ScoredEpisode"]


@dataclass(frozen=True, kw_only=True)
class Episode:
    """One utterance: who said what, when."""

    speaker: str
    """Who said it (a user id, the agent's name, or a participant's name)."""
    text: str
    """What was said, verbatim."""
    at: datetime
    """When it was said (naive datetimes are taken as UTC)."""
    session_id: str | None = None
    """The session (conversation) it belongs to."""
    ref: str | None = None
    """An external reference, e.g. a benchmark's dialogue id ``"D1:3"``."""
    caption: str | None = None
    """Caption of an image shared with it; stored as ``text + " [image: caption]"``."""

    @property
    def full_text(self) -> str:
        """The text as stored and searched (with the image caption, if any)."""
        return f"{self.text} [image: {self.caption}]" if self.caption else self.text


@dataclass(frozen=True, kw_only=True)
class ScoredEpisode:
    """An episode found by a search."""

    episode: Episode
    """The episode (``text`` includes the image caption when there was one)."""
    score: float
    """Fused search score; higher is better (comparable within one search only)."""
    id: str
    """Id of the stored learning."""
    similarity: float | None = None
    """Cosine of the query with the episode's indexed text (comparable across searches; what
    :attr:`EpisodicMemoryConfig.min_similarity` is compared with)."""
