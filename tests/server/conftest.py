"""Fixtures of the server tests: an app over a machine on each backend, seeded users."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from learning_machines import LearningMachine
from learning_machines.db import Db
from learning_machines.server import Gateway, create_app

from ._support import Seeded, keyring, make_machine, seed_sync


@dataclass
class Served:
    """An app, its client, machine and gateway, and two seeded users."""

    app: FastAPI
    client: TestClient
    machine: LearningMachine
    gateway: Gateway
    alice: Seeded
    bob: Seeded


@pytest.fixture
def served(db: Db) -> Iterator[Served]:
    """The server app over ``db`` (both backends) with alice and bob seeded."""
    machine = make_machine(db)
    app = create_app(machine, keys=keyring())
    gateway: Gateway = app.state.gateway
    alice = seed_sync(gateway, "alice", "zebracorn quokka")
    bob = seed_sync(gateway, "bob", "walrus")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield Served(app, client, machine, gateway, alice, bob)
    machine.close()
