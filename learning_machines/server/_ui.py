"""The review UI, ``/ui``: server-rendered pages that work without JavaScript.

People sign in with a key (it becomes a server-side session: an HttpOnly, SameSite=Strict
cookie holding a random id; the key itself is never stored in the browser). Every form post
carries the session's CSRF token and is refused without it, or from another origin. Everything
user-written is escaped by the templates (Jinja2 autoescape), and the pages' Content Security
Policy allows no script at all. What a page may show is decided by the same
:class:`~learning_machines.server._gateway.Gateway` as the API.
"""

from __future__ import annotations

import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ._deps import GatewayDep
from ._gateway import EntityGraph
from .auth import KeyRing, Principal

__all__ = ["error_page", "graph_layout", "install_ui"]

_HERE = Path(__file__).parent / "ui"
COOKIE = "lm_session"
_DONE = {
    "approved": "Proposal approved and saved.",
    "rejected": "Proposal rejected.",
    "restored": "Learning restored.",
    "forgotten": "User forgotten: everything private to them was deleted.",
}

templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(["html", "svg"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
)


@dataclass(frozen=True)
class UiSession:
    """A signed-in browser: who, and the token its forms must carry."""

    id: str
    principal: Principal
    csrf: str
    created: float


class UiSessions:
    """Sessions by id, in memory (a restart signs everyone out), bounded and expiring."""

    def __init__(self, *, ttl_seconds: float = 8 * 3600, size: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._size = size
        self._sessions: OrderedDict[str, UiSession] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, principal: Principal) -> UiSession:
        """A new session for ``principal``."""
        session = UiSession(
            id=secrets.token_urlsafe(32),
            principal=principal,
            csrf=secrets.token_urlsafe(32),
            created=time.monotonic(),
        )
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > self._size:
                self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> UiSession | None:
        """The live session ``session_id``, or ``None``."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and time.monotonic() - session.created > self._ttl:
                del self._sessions[session_id]
                return None
        return session

    def close(self, session_id: str) -> None:
        """End a session."""
        with self._lock:
            self._sessions.pop(session_id, None)


class _LoginRequired(Exception):
    """No session: go to the login page."""


class _CsrfRefused(Exception):
    """A form post without the session's token, or from another origin."""


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        # Browsers send Origin on every cross-site POST; a missing one is not cross-site.
        return origin != "null"
    return urlsplit(origin).netloc == request.headers.get("host", "")


def current(request: Request) -> UiSession:
    """The request's session, or a redirect to the login page."""
    sessions: UiSessions = request.app.state.ui_sessions
    session = sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise _LoginRequired
    return session


Session = Annotated[UiSession, Depends(current)]


def checked(request: Request, session: Session, csrf: Annotated[str, Form()] = "") -> UiSession:
    """The session of a form post that carries its CSRF token and comes from this origin."""
    if not _same_origin(request) or not hmac.compare_digest(csrf.encode(), session.csrf.encode()):
        raise _CsrfRefused
    return session


Posted = Annotated[UiSession, Depends(checked)]


def _page(
    request: Request, name: str, session: UiSession | None, status: int = 200, **context: Any
) -> HTMLResponse:
    done = _DONE.get(request.query_params.get("done", ""))
    return templates.TemplateResponse(
        request,
        name,
        {"session": session, "done": done, **context},
        status_code=status,
    )


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """An error as a page (the message is escaped like everything else)."""
    session = request.app.state.ui_sessions.get(request.cookies.get(COOKIE))
    return _page(request, "error.html", session, status=status, status_code=status, message=message)


def _user_url(user_id: str) -> str:
    return f"/ui/users/{quote(user_id, safe='')}"


def graph_layout(graph: EntityGraph, *, width: int = 640, height: int = 460) -> dict[str, Any]:
    """Positions for the entity graph picture: the entity in the middle, neighbours around."""
    cx, cy = width / 2, height / 2
    radius = min(width, height) / 2 - 50
    ids = list(graph.neighbours)
    nodes = [
        {
            "id": graph.entity.id,
            "name": graph.entity.content.get("name", ""),
            "x": cx,
            "y": cy,
            "center": True,
        }
    ]
    place: dict[str, tuple[float, float]] = {graph.entity.id: (cx, cy)}
    for i, other in enumerate(ids):
        angle = 2 * math.pi * i / max(1, len(ids)) - math.pi / 2
        x, y = cx + radius * math.cos(angle), cy + radius * math.sin(angle)
        place[other] = (x, y)
        nodes.append(
            {"id": other, "name": graph.neighbours[other], "x": x, "y": y, "center": False}
        )
    edges = []
    for rel in graph.relations:
        target = str(rel.content.get("object_id", ""))
        if target in place:
            edges.append((graph.entity.id, target, str(rel.content.get("relation", ""))))
    for rel in graph.inbound:
        source = str(rel.entity_id or "")
        if source in place:
            edges.append((source, graph.entity.id, str(rel.content.get("relation", ""))))
    lines = []
    for source, target, label in edges:
        (x1, y1), (x2, y2) = place[source], place[target]
        # The label sits halfway along its edge, a little aside, clear of both names.
        ox, oy = (x1, y1) if source != graph.entity.id else (x2, y2)
        lx, ly = cx + 0.5 * (ox - cx) + 4, cy + 0.5 * (oy - cy) - 6
        lines.append({"x1": x1, "y1": y1, "x2": x2, "y2": y2, "label": label, "lx": lx, "ly": ly})
    return {"width": width, "height": height, "nodes": nodes, "edges": lines}


router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/login")
async def login_form(request: Request) -> HTMLResponse:
    """Sign in with a key."""
    return _page(request, "login.html", None)


@router.post("/login")
async def login(request: Request, key: Annotated[str, Form()] = "") -> Response:
    """Check the key; open a session (the key is not kept in the browser)."""
    if not _same_origin(request):
        raise _CsrfRefused
    keys: KeyRing = request.app.state.keys
    principal = keys.authenticate(key.strip())
    if principal is None:
        return _page(request, "login.html", None, status=401, failed=True)
    session = request.app.state.ui_sessions.open(principal)
    response = RedirectResponse("/ui/", status_code=303)
    response.set_cookie(
        COOKIE,
        session.id,
        httponly=True,
        samesite="strict",
        secure=request.app.state.secure_cookies,
        path="/ui",
    )
    return response


@router.post("/logout")
async def logout(request: Request, session: Posted) -> Response:
    """End the session."""
    request.app.state.ui_sessions.close(session.id)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


@router.get("/")
async def home(request: Request, session: Session, gateway: GatewayDep) -> Response:
    """A user goes to their own page; a reviewer sees the queue and opens users by id."""
    principal = session.principal
    if principal.user_id is not None and not request.query_params.get("done"):
        return RedirectResponse(_user_url(principal.user_id), status_code=303)
    pending = await gateway.aproposals(principal, status="pending") if principal.reviews else []
    people = sorted({p.user_id for p in pending if p.user_id})
    return _page(request, "home.html", session, pending=pending, people=people)


@router.get("/users")
async def open_user(session: Session, user_id: str = "") -> Response:
    """Go to a user's page (the form on the home page)."""
    return RedirectResponse(
        _user_url(user_id.strip()) if user_id.strip() else "/ui/", status_code=303
    )


@router.get("/users/{user_id}")
async def user_page(
    request: Request, user_id: str, session: Session, gateway: GatewayDep
) -> HTMLResponse:
    """What is known about a user: profile, learnings, entities, episodes."""
    overview = await gateway.aoverview(session.principal, user_id=user_id)
    proposals = await gateway.aproposals(session.principal, status="pending", user_id=user_id)
    return _page(
        request,
        "user.html",
        session,
        o=overview,
        proposals=proposals,
        user_url=_user_url(overview.user_id),
    )


@router.get("/users/{user_id}/learnings/{learning_id}")
async def learning_page(
    request: Request, user_id: str, learning_id: str, session: Session, gateway: GatewayDep
) -> HTMLResponse:
    """One learning: content, provenance, history, restore."""
    principal = session.principal
    learning = await gateway.aget(principal, learning_id, user_id=user_id)
    history = await gateway.ahistory(principal, learning_id, user_id=user_id)
    return _page(
        request,
        "learning.html",
        session,
        learning=learning,
        history=history,
        user_url=_user_url(user_id),
        can_restore=principal.reviews or learning.namespace == "user",
    )


@router.post("/users/{user_id}/learnings/{learning_id}/restore")
async def restore(
    user_id: str,
    learning_id: str,
    session: Posted,
    gateway: GatewayDep,
    to_entry: Annotated[str, Form()] = "",
) -> Response:
    """Undo the last curation step (or go back to before an entry)."""
    await gateway.arestore(
        session.principal, learning_id, user_id=user_id, to_entry=to_entry or None
    )
    url = f"{_user_url(user_id)}/learnings/{quote(learning_id, safe='')}?done=restored"
    return RedirectResponse(url, status_code=303)


@router.get("/users/{user_id}/entities/{entity_id}")
async def entity_page(
    request: Request, user_id: str, entity_id: str, session: Session, gateway: GatewayDep
) -> HTMLResponse:
    """An entity with its facts, events, relationships and a picture of them."""
    graph = await gateway.aentity(session.principal, entity_id, user_id=user_id)
    return _page(
        request,
        "entity.html",
        session,
        g=graph,
        layout=graph_layout(graph),
        user_url=_user_url(user_id),
    )


@router.get("/proposals")
async def proposals_page(
    request: Request, session: Session, gateway: GatewayDep, status: str = "pending"
) -> HTMLResponse:
    """The review queue."""
    rows = await gateway.aproposals(session.principal, status=None if status == "all" else status)
    return _page(request, "proposals.html", session, proposals=rows, shown=status)


@router.post("/proposals/{proposal_id}/{decision}")
async def decide(
    proposal_id: str,
    decision: str,
    session: Posted,
    gateway: GatewayDep,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Approve or reject; the signed-in principal is recorded as who decided."""
    if decision not in ("approve", "reject"):
        return RedirectResponse("/ui/proposals", status_code=303)
    await gateway.adecide(
        session.principal,
        proposal_id,
        decision="approve" if decision == "approve" else "reject",
        note=note or None,
    )
    return RedirectResponse(f"/ui/proposals?done={decision}d", status_code=303)


@router.get("/users/{user_id}/forget")
async def forget_form(request: Request, user_id: str, session: Session) -> HTMLResponse:
    """Confirm before forgetting a user."""
    return _page(request, "forget.html", session, user_id=user_id, user_url=_user_url(user_id))


@router.post("/users/{user_id}/forget")
async def forget(request: Request, user_id: str, session: Posted, gateway: GatewayDep) -> Response:
    """Delete everything private to a user."""
    await gateway.aforget(session.principal, user_id)
    if session.principal.user_id is not None:
        request.app.state.ui_sessions.close(session.id)
        return RedirectResponse("/ui/login?done=forgotten", status_code=303)
    return RedirectResponse("/ui/?done=forgotten", status_code=303)


def install_ui(app: FastAPI, *, secure_cookies: bool = False) -> None:
    """Add the UI's routes, static files and error handling to ``app``."""
    app.state.ui_sessions = UiSessions()
    app.state.secure_cookies = secure_cookies
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=_HERE / "static"), name="ui-static")

    @app.exception_handler(_LoginRequired)
    async def to_login(request: Request, exc: _LoginRequired) -> Response:
        return RedirectResponse("/ui/login", status_code=303)

    @app.exception_handler(_CsrfRefused)
    async def csrf_refused(request: Request, exc: _CsrfRefused) -> Response:
        return error_page(
            request, 403, "This form was not sent from this site's own page; reload and try again."
        )

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/ui/", status_code=303)
