"""One FastAPI app: the HTTP API (``/v1``), the MCP server (``/mcp``) and the review UI (``/ui``).

``create_app(machine, keys=KeyRing.from_file("keys.toml"))`` builds it; ``learning-machines
serve`` runs it on 127.0.0.1. Every route but ``/v1/health`` and the UI's login page needs a key:
a bearer key for the API and MCP, a session made from a key for the UI. No key is a 401.
Requests whose ``Host`` is not an allowed host name are refused (DNS rebinding).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._ids import identity_key
from ..exceptions import (
    ConflictError,
    IsolationError,
    LearningMachinesError,
    NotFoundError,
    PermissionDenied,
    UsageError,
)
from ..machine import LearningMachine
from . import _api, _api_feedback
from ._deps import authenticate_header
from ._gateway import Gateway
from .auth import KeyRing, Role
from .mcp import DEFAULT_RESULT_CAP, PRINCIPAL_SCOPE_KEY, build_mcp_server

__all__ = ["DEFAULT_HOSTS", "ROUTERS", "create_app"]

logger = logging.getLogger("learning_machines.server")

#: Host names served by default (a server on 127.0.0.1 is reached by these).
DEFAULT_HOSTS = ("127.0.0.1", "localhost")

#: The API's routers. Feedback (Phase 2) and improvements (Phase 3) add theirs here.
ROUTERS: tuple[APIRouter, ...] = (
    _api.health,
    _api.turns,
    _api.learnings,
    _api.proposals,
    _api.users,
    _api.work,
    _api_feedback.feedback,
    _api_feedback.decisions,
)


def status_of(exc: LearningMachinesError) -> int:
    """The HTTP status of a library error."""
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, PermissionDenied | IsolationError):
        return 403
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, UsageError):
        return 422
    return 503


async def _send_json(
    send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _McpEndpoint:
    """``/mcp``: a user key is required; its principal rides in the scope to the handlers."""

    def __init__(self, manager: StreamableHTTPSessionManager, keys: KeyRing) -> None:
        self.manager = manager
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            principal = authenticate_header(self.keys, Headers(scope=scope).get("authorization"))
        except HTTPException:
            await _send_json(send, 503, b'{"detail":"the server\'s keys are misconfigured"}')
            return
        if principal is None:
            await _send_json(
                send,
                401,
                b'{"detail":"a bearer key is required: Authorization: Bearer lm_..."}',
                [(b"www-authenticate", b"Bearer")],
            )
            return
        if principal.role is not Role.USER:
            await _send_json(
                send, 403, b'{"detail":"MCP acts as one user: use a user key, not a reviewer key"}'
            )
            return
        # The SDK binds a session to the principal that opened it (scope["user"]); the handlers
        # read the principal of each request from the scope, never from the session.
        user = AuthenticatedUser(
            AccessToken(
                token="-",  # the key itself is never passed on
                client_id="learning-machines",
                scopes=[principal.role.value],
                subject=f"{principal.role.value}:{identity_key(principal.name)}",
            )
        )
        await self.manager.handle_request(
            {**scope, "user": user, PRINCIPAL_SCOPE_KEY: principal}, receive, send
        )


class _SecurityHeaders:
    """No caching of anyone's memory; no sniffing, framing or outside content in the UI."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ui = str(scope.get("path", "")).startswith("/ui")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    # Not "no-referrer": browsers then send "Origin: null" on the UI's own
                    # form posts, and the CSRF origin check must tell those apart.
                    (b"referrer-policy", b"same-origin"),
                ]
                if b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                if ui:
                    extra += [
                        (b"x-frame-options", b"DENY"),
                        (
                            b"content-security-policy",
                            b"default-src 'none'; style-src 'self'; img-src 'self' data:; "
                            b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                        ),
                    ]
                message["headers"] = headers + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    machine: LearningMachine,
    *,
    keys: KeyRing,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    result_cap: int = DEFAULT_RESULT_CAP,
    ui: bool = True,
    secure_cookies: bool = False,
) -> FastAPI:
    """The server app over ``machine`` (bound to its db), with ``keys`` deciding who is who.

    ``hosts`` are the host names clients reach the server by (others are refused);
    ``secure_cookies`` marks the UI's session cookie HTTPS-only (set it behind TLS).
    """
    gateway = Gateway(machine)
    mcp_server = build_mcp_server(gateway, result_cap=result_cap)
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[h for host in hosts for h in (host, f"{host}:*")],
        allowed_origins=[
            f"{s}://{host}{p}" for host in hosts for s in ("http", "https") for p in ("", ":*")
        ],
    )
    manager = StreamableHTTPSessionManager(
        app=mcp_server, json_response=True, stateless=False, security_settings=security
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with manager.run():
            yield

    app = FastAPI(
        title="Learning Machines",
        summary="Memory that learns: turns, learnings, proposals and review, per user.",
        version=_version(),
        lifespan=lifespan,
        # FastAPI's /docs page loads its script from a CDN; the schema alone is served.
        docs_url=None,
        redoc_url=None,
    )
    app.state.gateway = gateway
    app.state.keys = keys
    app.state.result_cap = result_cap
    for router in ROUTERS:
        app.include_router(router)
    app.router.routes.append(
        Route("/mcp", endpoint=_McpEndpoint(manager, keys), methods=["GET", "POST", "DELETE"])
    )
    if ui:
        from ._ui import install_ui

        install_ui(app, secure_cookies=secure_cookies)

    @app.exception_handler(LearningMachinesError)
    async def library_error(request: Request, exc: LearningMachinesError) -> Response:
        status = status_of(exc)
        if status >= 500:
            logger.warning("%s %s failed: %s", request.method, request.url.path, exc)
        if ui and request.url.path.startswith("/ui"):
            from ._ui import error_page

            return error_page(request, status, str(exc))
        return JSONResponse(
            status_code=status, content={"error": type(exc).__name__, "detail": str(exc)}
        )

    app.add_middleware(_SecurityHeaders)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))
    return app


def _version() -> str:
    from .. import __version__

    return __version__
