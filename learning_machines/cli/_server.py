"""Server commands: ``serve`` (HTTP API, MCP at /mcp, review UI), ``mcp`` (stdio), ``keys``.

The server modules import lazily, so the rest of the CLI works without the ``server`` extra.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..exceptions import ConfigurationError, NotFoundError, ValidationError
from ._common import DbOption, MachineOption, ModelOption, model_name, open_machine

__all__ = ["register"]

console = Console(stderr=True)
BackgroundOption = Annotated[
    bool,
    typer.Option(
        "--background/--no-background",
        help="Learn in this process (needs a model), or leave it to `learning-machines worker`.",
    ),
]
CapOption = Annotated[
    int, typer.Option("--result-cap", help="Most characters in one MCP result.", min=500)
]
KeysOption = Annotated[
    Path,
    typer.Option(
        "--file",
        envvar="LEARNING_MACHINES_KEYS",
        help="The keys file (TOML; $LEARNING_MACHINES_KEYS).",
    ),
]


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send this process's stdout (Python's and the C library's) to stderr meanwhile.

    Loading a machine may print (a user's module, a native library); in stdio mode stdout
    carries only the protocol.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _server_module() -> Any:
    try:
        import learning_machines.server as server
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"the server needs the server extra ({exc.name} is missing): "
            "pip install 'learning-machines[server]'"
        ) from exc
    return server


def _machine(db: str | None, machine: str | None, model: str | None, background: bool) -> Any:
    try:
        return open_machine(
            db, machine, model=model_name(model), background=background, learns=True, create=True
        )
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"{exc}; or serve with --no-background and run `learning-machines worker`"
        ) from exc


def serve(
    keys: Annotated[
        Path,
        typer.Option(
            "--keys",
            envvar="LEARNING_MACHINES_KEYS",
            help="The keys file ($LEARNING_MACHINES_KEYS); make keys with `keys add`.",
        ),
    ] = Path("keys.toml"),
    db: DbOption = None,
    machine: MachineOption = None,
    model: ModelOption = None,
    background: BackgroundOption = True,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option("--allowed-host", help="Host name clients use (repeatable; behind a proxy)."),
    ] = None,
    ui: Annotated[bool, typer.Option("--ui/--no-ui", help="Serve the review UI at /ui.")] = True,
    secure_cookies: Annotated[
        bool, typer.Option(help="HTTPS-only UI cookies (set when served behind TLS).")
    ] = False,
    result_cap: CapOption = 16_000,
) -> None:
    """Serve the HTTP API (/v1), MCP (/mcp) and the review UI (/ui) on 127.0.0.1."""
    server = _server_module()
    import uvicorn

    ring = server.KeyRing.from_file(keys)
    if len(ring) == 0:
        console.print(f"[yellow]{keys} has no keys: every request will be refused.[/yellow]")
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]listening on {host}: keys travel in clear over plain HTTP; put the "
            "server behind TLS.[/yellow]"
        )
    hosts = [*server.http.DEFAULT_HOSTS, *(allowed_host or [])]
    if host not in hosts and host not in ("0.0.0.0", "::"):
        hosts.append(host)
    app = server.create_app(
        _machine(db, machine, model, background),
        keys=ring,
        hosts=hosts,
        result_cap=result_cap,
        ui=ui,
        secure_cookies=secure_cookies,
    )
    console.print(
        f"Serving on http://{host}:{port}  (API /v1, MCP /mcp, UI /ui, OpenAPI /openapi.json)"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)


def mcp(
    user: Annotated[
        str,
        typer.Option(
            "--user",
            envvar="LEARNING_MACHINES_USER",
            help="The local user ($LEARNING_MACHINES_USER).",
        ),
    ],
    db: DbOption = None,
    machine: MachineOption = None,
    model: ModelOption = None,
    background: BackgroundOption = True,
    result_cap: CapOption = 16_000,
) -> None:
    """Serve MCP over stdio for one local user (only protocol is written to stdout)."""
    import anyio

    from .._ids import check_id

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    check_id(user, name="--user")
    server = _server_module()
    with _stdout_to_stderr():
        learning = _machine(db, machine, model, background)
    gateway = server.Gateway(learning)
    try:
        anyio.run(lambda: server.serve_stdio(gateway, user_id=user, result_cap=result_cap))
    finally:
        learning.close()


def keys_add(
    name: Annotated[str, typer.Option("--name", help="The user id, or the reviewer's name.")],
    file: KeysOption = Path("keys.toml"),
    role: Annotated[str, typer.Option(help="user, reviewer or admin.")] = "user",
) -> None:
    """Make a key, store its hash in the keys file, and print the key once (on stdout)."""
    from .._ids import check_id
    from ..server.auth import ApiKey, Role, hash_key, new_key, read_keys, write_keys

    try:
        chosen = Role(role)
    except ValueError as exc:
        raise ValidationError(f"--role {role!r}: use user, reviewer or admin") from exc
    check_id(name, name="--name")
    existing = read_keys(file) if file.exists() else []
    key = new_key()
    write_keys(file, [*existing, ApiKey(name=name, role=chosen, sha256=hash_key(key))])
    console.print(f"Added a {chosen.value} key for {name!r} to {file}. It is shown only now:")
    typer.echo(key)


def keys_list(file: KeysOption = Path("keys.toml")) -> None:
    """List the keys file's keys (names, roles and hash prefixes; never the keys)."""
    from ..server.auth import read_keys

    table = Table(title=str(file))
    for column in ("name", "role", "sha256"):
        table.add_column(column)
    for key in read_keys(file):
        table.add_row(key.name, key.role.value, key.sha256[:12] + "…")
    Console().print(table)


def keys_remove(
    name: Annotated[str, typer.Option("--name", help="Remove every key of this name.")],
    file: KeysOption = Path("keys.toml"),
) -> None:
    """Revoke a name's keys (a running server notices the change)."""
    from ..server.auth import read_keys, write_keys

    keys = read_keys(file)
    kept = [k for k in keys if k.name != name]
    if len(kept) == len(keys):
        raise NotFoundError(f"{file} has no key named {name!r}; see `learning-machines keys list`")
    write_keys(file, kept)
    console.print(f"Removed {len(keys) - len(kept)} key(s) of {name!r}.")


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``mcp`` and ``keys`` to the ``learning-machines`` app."""
    app.command()(serve)
    app.command()(mcp)
    keys = typer.Typer(help="API keys of the server (hashes in a TOML file).", no_args_is_help=True)
    keys.command("add")(keys_add)
    keys.command("list")(keys_list)
    keys.command("remove")(keys_remove)
    app.add_typer(keys, name="keys")
