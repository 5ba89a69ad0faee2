"""The review UI in a real browser (Debian's Chromium driven by Playwright), against a live
server on 127.0.0.1: approve a proposal and see it recalled, restore a learning, forget a user —
each checked through the HTTP API afterwards.

Set ``LM_SCREENSHOTS=docs/images`` to keep the pages' screenshots (docs/server.md shows them).
Skipped where Chromium is not installed, except when ``LEARNING_MACHINES_REQUIRE_BROWSER`` is
set (CI installs it and sets that).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from learning_machines._sync import run_sync

from ._support import KEYS, auth, live, principal, seed, sqlite

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("LEARNING_MACHINES_REQUIRE_BROWSER"):
            pytest.fail("Chromium is required here: apt-get install -y chromium")
        pytest.skip("browser tests need Chromium: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """A live server with alice and bob seeded; (url, gateway, seeded)."""
    with live(sqlite(tmp_path)) as (server, gateway):
        seeded = {
            "alice": run_sync(seed(gateway, "alice", "Zebracorn")),
            "bob": run_sync(seed(gateway, "bob", "Walrus")),
        }
        yield server.url, gateway, seeded


def shots() -> Path | None:
    where = os.environ.get("LM_SCREENSHOTS")
    if not where:
        return None
    path = Path(where)
    path.mkdir(parents=True, exist_ok=True)
    return path


def snap(page: Any, name: str) -> None:
    folder = shots()
    if folder is not None:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def sign_in(browser: Any, url: str, who: str) -> Any:
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    page.goto(f"{url}/ui/login")
    if who == "carol":
        snap(page, "login")
    page.fill("#key", KEYS[who])
    click(page, page.get_by_role("button", name="Sign in"))
    assert "/ui/login" not in page.url, page.inner_text("main")
    return page


def click(page: Any, target: Any) -> None:
    """Click something that submits a form or follows a link, and wait for the new page."""
    with page.expect_navigation():
        target.click()


def api(url: str, method: str, path: str, who: str, **kwargs: Any) -> Any:
    response = httpx2.request(method, f"{url}{path}", headers=auth(who), timeout=30, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_reviewer_approves_a_proposal_and_the_user_recalls_it(
    browser: Any, site: tuple[str, Any, dict[str, Any]]
) -> None:
    url, _gateway, _seeded = site
    before = api(
        url, "POST", "/v1/turns", "alice", json={"message": "may we page Zebracorn at night?"}
    )
    assert "Never page Zebracorn at night" not in before["context"]

    page = sign_in(browser, url, "carol")
    page.goto(f"{url}/ui/proposals")
    snap(page, "review-queue")
    card = page.locator("article.proposal", has_text="Never page Zebracorn at night")
    card.locator("input[name=note]").fill("fine by me")
    click(page, card.get_by_role("button", name="Approve"))
    assert "Proposal approved" in page.inner_text("main")
    assert page.locator("article.proposal", has_text="Never page Zebracorn at night").count() == 0

    after = api(
        url, "POST", "/v1/turns", "alice", json={"message": "may we page Zebracorn at night?"}
    )
    assert "Never page Zebracorn at night" in after["context"]
    decided = api(url, "GET", "/v1/proposals", "alice", params={"status": "approved"})
    mine = next(p for p in decided if "night" in p["summary"])
    assert mine["decided_by"] == "carol"
    assert mine["decision_note"] == "fine by me"


def test_a_user_cannot_approve_their_own_hitl_proposal_in_the_browser(
    browser: Any, site: tuple[str, Any, dict[str, Any]]
) -> None:
    url, _gateway, _seeded = site
    page = sign_in(browser, url, "alice")
    page.goto(f"{url}/ui/proposals")
    card = page.locator("article.proposal", has_text="HITL")
    click(page, card.get_by_role("button", name="Approve"))
    assert "Not allowed" in page.inner_text("main")
    assert "needs human review" in page.inner_text("main")
    waiting = api(url, "GET", "/v1/proposals", "alice")
    assert any(p["mode"] == "hitl" for p in waiting)


def test_a_reviewer_restores_a_learning(
    browser: Any, site: tuple[str, Any, dict[str, Any]]
) -> None:
    url, _gateway, seeded = site
    hitl = seeded["alice"].pending_proposals[0]
    api(url, "POST", f"/v1/proposals/{hitl}/approve", "carol")
    profile = api(url, "GET", "/v1/learnings", "alice", params={"learning_type": "user_profile"})[0]
    assert profile["content"]["team"] == "Zebracorn team"

    page = sign_in(browser, url, "carol")
    page.goto(f"{url}/ui/users/alice")
    snap(page, "user")
    click(page, page.locator("#profile").get_by_role("link", name="Provenance and history"))
    snap(page, "learning-history")
    click(page, page.get_by_role("button", name="Undo the last curation step"))
    assert "Learning restored" in page.inner_text("main")
    assert "restore" in page.inner_text("#history")

    restored = api(url, "GET", f"/v1/learnings/{profile['id']}", "alice")
    assert not restored["content"].get("team")
    history = api(url, "GET", f"/v1/learnings/{profile['id']}/history", "alice")
    assert history[-1]["action"] == "restore"
    assert history[-1]["actor"]["reviewer"] == "carol"

    labs = next(
        e
        for e in seeded["alice"].entity_ids
        if "Labs" in api(url, "GET", f"/v1/learnings/{e}", "alice")["text"]
    )
    turn = api(url, "POST", "/v1/turns", "alice", json={"message": "Dana joined Zebracorn Labs."})
    for relation in (
        {"subject": "Dana", "relation": "works at", "object": "Zebracorn Labs"},
        {"subject": "Zebracorn Labs", "relation": "acquired", "object": "Acme"},
    ):
        api(
            url,
            "POST",
            f"/v1/turns/{turn['turn_id']}/tools/save_entity_relation",
            "alice",
            json={"arguments": relation},
        )
    page.goto(f"{url}/ui/users/alice/entities/{labs}")
    assert page.locator("svg circle").count() == 4
    assert "acquired" in page.inner_text("#graph")
    snap(page, "entity-graph")


def test_an_admin_forgets_a_user(browser: Any, site: tuple[str, Any, dict[str, Any]]) -> None:
    url, gateway, _seeded = site
    assert api(url, "GET", "/v1/learnings", "root", params={"user_id": "bob"})
    alice_before = api(url, "GET", "/v1/learnings", "alice")

    page = sign_in(browser, url, "root")
    page.goto(f"{url}/ui/users/bob")
    click(page, page.get_by_role("link", name="Forget bob…"))
    snap(page, "forget")
    click(page, page.get_by_role("button", name="Forget bob"))
    assert "User forgotten" in page.inner_text("main")

    assert api(url, "GET", "/v1/learnings", "root", params={"user_id": "bob"}) == []
    assert api(url, "GET", "/v1/learnings", "bob") == []
    assert api(url, "GET", "/v1/proposals", "bob") == []
    assert api(url, "GET", "/v1/learnings", "alice") == alice_before
    assert run_sync(gateway.aexport(principal("root"), "bob"))["messages"] == []
