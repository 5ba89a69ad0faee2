"""Learning Machines over the network: an MCP server, an HTTP API and a review UI.

Needs the ``server`` extra (``pip install 'learning-machines[server]'``). Run it with
``learning-machines serve`` (HTTP API, MCP at ``/mcp`` and the UI at ``/ui``, on 127.0.0.1) or
``learning-machines mcp`` (MCP over stdio, for one local user). See ``docs/server.md``.
"""

from ._gateway import Gateway
from .auth import ApiKey, KeyRing, Principal, Role, hash_key, new_key
from .http import create_app
from .mcp import build_mcp_server, serve_stdio

__all__ = [
    "ApiKey",
    "Gateway",
    "KeyRing",
    "Principal",
    "Role",
    "build_mcp_server",
    "create_app",
    "hash_key",
    "new_key",
    "serve_stdio",
]
