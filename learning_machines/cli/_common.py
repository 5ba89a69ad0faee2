"""What the CLI's commands share: the db and machine they open, options, and output helpers.

Every command that works on what was learned goes through ``machine.service`` (a
:class:`~learning_machines.machine.LearningService`) of a machine built with
``background=False`` and no model: reviewing, curating or exporting never calls a model.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console

from ..db import Db, PostgresDb, SqliteDb
from ..exceptions import ConfigurationError, NotFoundError

__all__ = [
    "DEFAULT_DB",
    "ByOption",
    "DbOption",
    "JsonOption",
    "MachineOption",
    "MkdirOption",
    "ModelOption",
    "NoteOption",
    "clip",
    "console",
    "db_url",
    "emit_json",
    "load_machine",
    "model_name",
    "open_db",
    "open_machine",
]

#: The database every command uses when ``--db`` is not given (and $LEARNING_MACHINES_DB unset).
DEFAULT_DB = "learnings.db"
#: Environment variable naming the default database.
DB_ENV = "LEARNING_MACHINES_DB"

console = Console()

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="PATH|URL",
        help=f"SQLite file or postgresql:// URL (default: ${DB_ENV}, else {DEFAULT_DB}).",
    ),
]
MachineOption = Annotated[
    str | None,
    typer.Option(
        "--machine",
        metavar="MODULE:ATTR",
        help="Your LearningMachine (or a function returning one), e.g. myapp.learning:machine; "
        "modules are found from the current directory. Default: every built-in store.",
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        metavar="PROVIDER:MODEL",
        help="pydantic-ai model, e.g. openai:gpt-4.1-mini (default: $LEARNING_MACHINES_MODEL).",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table.")
]
ByOption = Annotated[
    str, typer.Option("--by", metavar="REVIEWER", help="Who decides (recorded with the decision).")
]
NoteOption = Annotated[str | None, typer.Option("--note", metavar="TEXT", help="Why (recorded).")]
MkdirOption = Annotated[
    bool,
    typer.Option("--mkdir", help="Create the directory of the --db file if it does not exist."),
]


def db_url(db: str | None) -> str:
    """The database a command uses: ``--db``, else ``$LEARNING_MACHINES_DB``, else the default."""
    return db or os.environ.get(DB_ENV) or DEFAULT_DB


def model_name(model: str | None) -> str | None:
    """``--model``, else ``$LEARNING_MACHINES_MODEL``, else ``None``."""
    return model or os.environ.get("LEARNING_MACHINES_MODEL") or None


def open_db(url: str, *, create: bool = False, mkdir: bool = False) -> Db:
    """Open ``url``: ``postgresql://`` gives :class:`PostgresDb`, anything else a SQLite file.

    A SQLite file that does not exist is refused unless ``create`` (commands that write new
    data); its directory must exist unless ``mkdir``, so a mistyped ``--db`` never leaves new
    files or directory trees behind.
    """
    if url.startswith(("postgres://", "postgresql://")):
        return PostgresDb(url)
    if url not in (":memory:", ""):
        path = Path(url).expanduser()
        if not path.parent.is_dir() and not mkdir:
            raise ConfigurationError(
                f"the directory of --db {url} does not exist; check the path, or pass --mkdir "
                "to create it"
            )
        if not path.exists() and not create:
            raise NotFoundError(
                f"no database at {url}; check --db (or ${DB_ENV}), or run "
                "`learning-machines demo` to make one"
            )
    return SqliteDb(url)


def _import_target(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(
            f"--machine {spec}: give module:attribute, e.g. myapp.learning:machine"
        )
    if module_name.endswith(".py") or "/" in module_name:
        path = Path(module_name).resolve()
        if not path.is_file():
            raise ConfigurationError(f"--machine {spec}: no file {module_name}")
        loader = importlib.util.spec_from_file_location(path.stem, path)
        if loader is None or loader.loader is None:
            raise ConfigurationError(f"--machine {spec}: {module_name} is not a Python file")
        module = importlib.util.module_from_spec(loader)
        sys.modules[path.stem] = module
        loader.loader.exec_module(module)
    else:
        # The console script's sys.path holds its own bin directory, not the user's project.
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                raise ConfigurationError(
                    f"--machine {spec}: no module {module_name!r} importable from "
                    f"{os.getcwd()}; run from your project's directory"
                ) from exc
            raise
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigurationError(f"--machine {spec}: {module_name} has no {attribute!r}") from None


def load_machine(spec: str | None) -> Any:
    """The unbound machine named by ``module:attribute`` (or ``None`` without a spec)."""
    from ..machine import LearningMachine

    if spec is None:
        return None
    target = _import_target(spec)
    if callable(target) and not isinstance(target, LearningMachine):
        target = target()
    if not isinstance(target, LearningMachine):
        raise ConfigurationError(f"--machine {spec} is a {type(target).__name__}, not a machine")
    return target


def open_machine(
    db: str | None,
    spec: str | None = None,
    *,
    model: Any = None,
    embedder: Any = None,
    background: bool = False,
    learns: bool = False,
    create: bool = False,
    mkdir: bool = False,
    default: Callable[[], Any] | None = None,
) -> Any:
    """The machine a command works with, bound to its db.

    ``spec`` names the app's own machine (so its stores and namespaces are honoured); without
    it, ``default()`` when given (a command that needs stores of its own), else every built-in
    store in its default configuration. ``model`` replaces the machine's
    model. Unless the command ``learns`` (chat, worker), the machine's model is dropped: admin
    work never calls a model, so it never needs the model's SDK or API key. ``background``
    learns in this process (chat); ``create`` and ``mkdir`` are :func:`open_db`'s.
    """
    from ..machine import LearningMachine

    machine = load_machine(spec)
    if machine is not None and embedder is not None:
        raise ConfigurationError("give --machine or --embedder, not both: the machine has one")
    if machine is None and default is not None:
        machine = default()
    if machine is None:
        machine = LearningMachine(
            embedder=embedder,
            user_profile=True,
            session_context=True,
            learned_knowledge=True,
            entity_memory=True,
            episodic_memory=True,
        )
    machine.background = background
    if machine.db is None and (model is not None or not learns):
        machine.model = model
    if machine.db is not None:
        if db is not None:
            raise ConfigurationError(
                f"--machine {spec} is already attached to its own db ({machine.db!r}); leave "
                "out --db"
            )
        machine.bind(db=machine.db, model=model)
        return machine
    machine.bind(db=open_db(db_url(db), create=create, mkdir=mkdir), model=model)
    return machine


def clip(value: Any, width: int) -> str:
    """``value`` as text of at most ``width`` characters; a cut is marked with ``…``."""
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "embedding"  # hundreds of floats nobody reads in a terminal
        }
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def emit_json(value: Any) -> None:
    """Print ``value`` (records, lists, dicts) as JSON on stdout, for scripts."""
    typer.echo(json.dumps(_plain(value), ensure_ascii=False, indent=2, default=str))
