"""Shared fixtures: where the shared Taskcluster data lives (optional), the broker URL."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "references"
BROKER_URL = os.environ.get("TCLISTEN_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture(scope="session")
def shared_references() -> Path:
    """Taskcluster's published references; tests that need them skip on a fresh clone."""
    if not (SHARED / "tc-example-deployment").is_dir():
        pytest.skip("../shared/references is not here")
    return SHARED


def _broker_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def broker_url() -> str:
    if not _broker_up():
        pytest.fail("RabbitMQ is not listening on 127.0.0.1:5672 (.ci/run starts it)")
    return BROKER_URL


@pytest.fixture
def broker(broker_url):
    """Publishes like Taskcluster on the real broker; removes what the test created, even
    after a broker restart or a cut connection."""
    from support.faultkit import close_broker
    from support.listener_kit import Broker

    b = Broker(broker_url)
    yield b
    close_broker(b)
