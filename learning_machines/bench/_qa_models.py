"""Model calls for ``bench qa``, cached on disk and counted.

:class:`CachingModel` wraps any pydantic-ai model (a ``"provider:model"`` string, ``"test"``, or
a ``Model``). Each response is appended to a JSON-lines file under a key made of the model's
name and what was sent (messages without their timestamps and ids, tool and output schemas,
settings). The same request later is answered from the file: a rerun makes no model call, and a
run that was interrupted resumes where it stopped, since every finished call is already on disk.
The time a call took is stored with it, so a rerun reports the latency measured when it was made.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_ai import messages as pa
from pydantic_ai.messages import ModelMessagesTypeAdapter
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

__all__ = ["CachingModel", "ModelCache", "RoleUsage", "request_key"]

logger = logging.getLogger("learning_machines")

# What identifies a message part; everything else (timestamps, run and call ids, provider
# details) differs from one run to the next and must not change the key.
_PART_FIELDS = ("part_kind", "content", "tool_name", "args")


def _canonical_messages(messages: list[pa.ModelMessage]) -> list[dict[str, Any]]:
    out = []
    for message in ModelMessagesTypeAdapter.dump_python(messages, mode="json"):
        out.append(
            {
                "kind": message.get("kind"),
                "instructions": message.get("instructions"),
                "parts": [
                    {k: part.get(k) for k in _PART_FIELDS if k in part}
                    for part in message.get("parts", [])
                ],
            }
        )
    return out


def _tools(params: ModelRequestParameters) -> list[Any]:
    tools = [*params.function_tools, *params.output_tools]
    return [[t.name, t.parameters_json_schema] for t in tools]


def request_key(
    model_id: str,
    messages: list[pa.ModelMessage],
    settings: ModelSettings | None,
    params: ModelRequestParameters,
) -> str:
    """The cache key of one request: sha256 of what decides the model's answer."""
    payload = {
        "model": model_id,
        "messages": _canonical_messages(messages),
        "settings": dict(settings or {}),
        "tools": _tools(params),
        "output_mode": str(params.output_mode),
        "output_object": params.output_object.json_schema if params.output_object else None,
        "allow_text_output": params.allow_text_output,
    }
    blob = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class _Entry:
    response: pa.ModelResponse
    seconds: float


class ModelCache:
    """Responses by request key, kept in an append-only JSON-lines file (or in memory only).

    A line cut short by a killed process is skipped when the file is read back.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        if self.path is not None and self.path.exists():
            self._load(self.path)

    def _load(self, path: Path) -> None:
        skipped = 0
        with path.open(encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                    response = ModelMessagesTypeAdapter.validate_python([row["response"]])[0]
                except (ValueError, KeyError, IndexError):
                    skipped += 1
                    continue
                if isinstance(response, pa.ModelResponse):
                    self._entries[row["key"]] = _Entry(response, float(row.get("seconds", 0.0)))
        if skipped:
            logger.warning("qa cache %s: skipped %d unreadable lines", path, skipped)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> tuple[pa.ModelResponse, float] | None:
        """The cached response and the seconds it took, or ``None``."""
        entry = self._entries.get(key)
        return None if entry is None else (entry.response, entry.seconds)

    def put(self, key: str, response: pa.ModelResponse, seconds: float) -> None:
        """Remember ``response`` (and write it to the file at once)."""
        with self._lock:
            self._entries[key] = _Entry(response, seconds)
            if self.path is None:
                return
            dumped = ModelMessagesTypeAdapter.dump_python([response], mode="json")[0]
            line = json.dumps({"key": key, "seconds": seconds, "response": dumped})
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()


@dataclass
class RoleUsage:
    """Calls and tokens of one role (answer, judge, learning), new and from the cache."""

    calls: int = 0
    """Requests sent to the model in this run."""
    cached: int = 0
    """Requests answered from the cache."""
    input_tokens: int = 0
    """Input tokens of the requests sent in this run (as the provider reported them)."""
    output_tokens: int = 0
    """Output tokens of the requests sent in this run."""
    all_input_tokens: int = 0
    """Input tokens of every request, sent or cached: what a run without a cache spends."""
    all_output_tokens: int = 0
    """Output tokens of every request, sent or cached."""
    seconds: list[float] = field(default_factory=list)
    """Latency of every request, as measured when it was sent."""

    def add(self, response: pa.ModelResponse, seconds: float, *, cached: bool) -> None:
        """Count one request."""
        usage = response.usage
        if cached:
            self.cached += 1
        else:
            self.calls += 1
            self.input_tokens += usage.input_tokens
            self.output_tokens += usage.output_tokens
        self.all_input_tokens += usage.input_tokens
        self.all_output_tokens += usage.output_tokens
        self.seconds.append(seconds)


class CachingModel(WrapperModel):
    """A model whose responses come from :class:`ModelCache` when it has them.

    Streaming is not cached (the benchmark never streams).
    """

    def __init__(self, wrapped: Model | str, *, cache: ModelCache, usage: RoleUsage) -> None:
        super().__init__(wrapped)
        self.cache = cache
        self.usage = usage

    async def request(
        self,
        messages: list[pa.ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> pa.ModelResponse:
        """Answer from the cache, or ask the wrapped model and remember its answer."""
        model_id = f"{self.wrapped.system}:{self.wrapped.model_name}"
        key = request_key(model_id, messages, model_settings, model_request_parameters)
        hit = self.cache.get(key)
        if hit is not None:
            self.usage.add(hit[0], hit[1], cached=True)
            return hit[0]
        start = time.perf_counter()
        response = await self.wrapped.request(messages, model_settings, model_request_parameters)
        seconds = time.perf_counter() - start
        self.cache.put(key, response, seconds)
        self.usage.add(response, seconds, cached=False)
        return response
