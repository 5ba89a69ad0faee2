"""Turning what a user writes in a store slot (``True``, a config, a store) into a store."""

from __future__ import annotations

import importlib
from typing import Any

from ..exceptions import ConfigurationError

__all__ = ["BUILTIN_SLOTS", "StoreSpec", "resolve_store"]

#: A slot accepts ``True``/``False``/``None``, a store config, or a store instance.
StoreSpec = Any

#: Built-in slot name → name of its config class in ``learning_machines.stores``.
BUILTIN_SLOTS: dict[str, str] = {
    "user_profile": "UserProfileConfig",
    "session_context": "SessionContextConfig",
    "learned_knowledge": "LearnedKnowledgeConfig",
    "entity_memory": "EntityMemoryConfig",
    "episodic_memory": "EpisodicMemoryConfig",
}


def _config_class(slot: str) -> type[Any]:
    stores = importlib.import_module("learning_machines.stores")
    config_class: type[Any] = getattr(stores, BUILTIN_SLOTS[slot])
    return config_class


def resolve_store(slot: str, spec: StoreSpec) -> Any:
    """The store for ``slot``: ``None`` when disabled, else a store instance."""
    if spec is None or spec is False:
        return None
    if slot in BUILTIN_SLOTS:
        config_class = _config_class(slot)
        if spec is True:
            return config_class().create_store()
        if isinstance(spec, config_class):
            return spec.create_store()
        if hasattr(spec, "create_store") and not hasattr(spec, "recall"):
            raise ConfigurationError(
                f"{slot}= got a {type(spec).__name__}; it takes True, a "
                f"{config_class.__name__} or a store instance"
            )
        return spec
    if spec is True:
        raise ConfigurationError(f"custom store {slot!r} must be a store instance, not True")
    if hasattr(spec, "create_store") and not hasattr(spec, "recall"):
        return spec.create_store()
    return spec
