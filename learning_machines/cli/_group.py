"""How every command fails and explains itself: one-line errors, help without type tags.

An expected error (any :class:`~learning_machines.exceptions.LearningMachinesError`, a bad
option, an unreadable file) prints ``error: <what went wrong and how to fix it>`` and exits
non-zero: 2 for a mistake in the call, 1 for a failure at run time. ``--debug`` (anywhere on
the command line) or ``LEARNING_MACHINES_DEBUG=1`` lets the traceback through instead.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, NoReturn

import typer
import typer.core
from typer.core import TyperArgument, TyperCommand, TyperGroup

from ..exceptions import LearningMachinesError, UsageError

# The click that typer runs on: recent typer vendors its own copy, older typer uses click.
_click: Any = getattr(typer.core, "_click", None) or importlib.import_module("click")
_PASS_THROUGH: tuple[type[BaseException], ...] = tuple(
    {
        typer.Exit,
        typer.Abort,
        getattr(_click.exceptions, "Exit", typer.Exit),
        getattr(_click.exceptions, "Abort", typer.Abort),
    }
)

__all__ = ["DEBUG_ENV", "Command", "Group", "fail", "run", "styled"]

#: Set to 1 to see tracebacks instead of one-line errors.
DEBUG_ENV = "LEARNING_MACHINES_DEBUG"


def _debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "").lower() in {"1", "true", "yes"}


def fail(message: str, *, code: int = 1, hint: str | None = None) -> NoReturn:
    """Print ``error: message`` (and a hint line) on stderr and exit with ``code``."""
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    typer.echo(f"error: {first}", err=True)
    if hint:
        typer.echo(f"hint: {hint}", err=True)
    raise typer.Exit(code)


def _report(exc: BaseException, ctx: Any) -> NoReturn:
    if isinstance(exc, _click.exceptions.UsageError):
        where = exc.ctx.command_path if exc.ctx else ctx.command_path
        fail(exc.format_message(), code=2, hint=f"{where} --help")
    if isinstance(exc, LearningMachinesError):
        fail(str(exc), code=2 if isinstance(exc, UsageError) else 1)
    if isinstance(exc, OSError):
        fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
    fail(
        f"unexpected {type(exc).__name__}: {exc}",
        hint=f"this is a bug; rerun with --debug (or {DEBUG_ENV}=1) and report the traceback",
    )


def _untyped(params: list[Any]) -> list[Any]:
    # Typer prints a type tag (<str>, <bool>) beside every option; the option's metavar, when
    # it has one, says more (PATH|URL), and flags need none.
    for param in params:
        shown = None if isinstance(param, TyperArgument) else param.metavar
        param.display_type_rich = (lambda value: lambda ctx: value)(shown)
    return params


class Command(TyperCommand):
    """A command whose help shows metavars, not type tags."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The command's parameters, as help shows them."""
        return _untyped(super().get_params(ctx))


class Group(TyperGroup):
    """A command group that turns expected errors into one line (see the module docstring)."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The group's parameters, as help shows them."""
        return _untyped(super().get_params(ctx))

    def invoke(self, ctx: Any) -> Any:
        """Run the chosen command; report what it raised in one line unless debugging."""
        try:
            return super().invoke(ctx)
        except _PASS_THROUGH:
            raise
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # The reader went away (`... | head`): stop quietly, as Unix tools do.
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing more is written
            raise typer.Exit(141) from None
        except Exception as exc:
            if _debugging():
                raise
            _report(exc, ctx)


def styled(app: typer.Typer) -> None:
    """Give every command of ``app`` (and of its sub-apps) the :class:`Command` help style.

    Commands registered by other modules with a plain ``app.command()`` are included.
    """
    for info in app.registered_commands:
        if info.cls is None or info.cls is TyperCommand:
            info.cls = Command
    for group in app.registered_groups:
        sub = group.typer_instance
        if sub is not None:
            # An unset cls is typer's DefaultPlaceholder (or None in older typer).
            if not isinstance(sub.info.cls, type) or sub.info.cls is TyperGroup:
                sub.info.cls = Group
            styled(sub)


def run(app: typer.Typer, argv: list[str] | None = None) -> None:
    """Run ``app`` as the ``learning-machines`` command; ``--debug`` may come anywhere."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in args:
        args = [a for a in args if a != "--debug"]
        os.environ[DEBUG_ENV] = "1"
    app(args=args, prog_name="learning-machines")
