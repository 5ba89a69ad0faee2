"""Resolving a model given as a ``"provider:model"`` string — once, when the machine is built."""

from __future__ import annotations

from pydantic_ai.exceptions import UserError
from pydantic_ai.models import Model, infer_model

from ..exceptions import ConfigurationError

__all__ = ["resolve_model"]

#: Provider prefix → the extra that installs its SDK.
_EXTRAS = {"openai": "openai", "anthropic": "anthropic"}


def resolve_model(model: Model | str) -> Model:
    """The pydantic-ai model for ``model``, a ``"provider:model"`` string resolved now.

    A missing SDK, API key or an unknown name is then a :class:`ConfigurationError` when the
    machine is built — not a silent failure of background learning later.
    """
    if isinstance(model, Model):
        return model
    provider = model.split(":", 1)[0] if ":" in model else model
    try:
        return infer_model(model)
    except ImportError as exc:
        extra = _EXTRAS.get(provider)
        hint = (
            f'pip install "learning-machines[{extra}]"'
            if extra
            else f'pip install "pydantic-ai-slim[{provider}]"'
        )
        raise ConfigurationError(
            f"model {model!r} needs the {provider} SDK, which is not installed: {hint}"
        ) from exc
    except UserError as exc:
        raise ConfigurationError(f"model {model!r} cannot be used: {exc}") from exc
