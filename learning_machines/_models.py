"""Resolving a model given as a ``"provider:model"`` string — once, when the machine is built."""

from __future__ import annotations

from pydantic_ai.exceptions import UserError
from pydantic_ai.models import Model, infer_model

from .exceptions import ConfigurationError

__all__ = ["check_learning_model", "resolve_model"]

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
    except Exception as exc:
        raise ConfigurationError(
            f"model {model!r} cannot be used: {type(exc).__name__}: {exc}"
        ) from exc


def check_learning_model(
    model: Model | str | None, *, needed_by: list[str], background: bool
) -> None:
    """Refuse a machine that would learn in the background without a usable model.

    ``needed_by`` names the stores whose background learning makes a model call. A machine that
    only records turns (``background=False``: a separate worker learns) needs none.
    """
    if needed_by and background and model is None:
        raise ConfigurationError(
            f"stores {', '.join(needed_by)} learn in the background and need a model: pass "
            "model='provider:model' to LearningMachine(...) (or use it through Agent, whose "
            "model is used by default), or background=False when a separate worker learns"
        )
    if needed_by and model is not None:
        resolve_model(model)
