"""Shared fixtures: where the shared Taskcluster data lives (optional), the broker on 5672
(queues and exchanges of the tests' own, deleted afterwards; never stopped or reconfigured),
and brokers of the tests' own to stop, restart, kill or cluster (:mod:`support.nodes`):

* ``private_node`` (module): one private single node; ``.url`` is guest (administrator).  A test
  may stop (the app or the node) or kill it: it is healed after each test.
* ``cluster`` (session): three clustered nodes, ``.urls``, ``.failover_url``.
* ``node_factory`` (function): ``node_factory(consumer_timeout=3000, ...)``, destroyed after the test.
* ``pulse_user`` (function): a user on ``private_node`` with exactly PulseGuardian's permissions;
  the value is its URL with ``.name``, ``.password``, ``.node`` and ``.admin_url``.

Without RabbitMQ installed the private-node fixtures skip (``TCLISTEN_REQUIRE_RABBITMQ=1``: fail).
"""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import uuid
from pathlib import Path

import pytest

from support.env import BROKER_URL, ROOT, SHARED  # noqa: F401 - ROOT for the tests' own use
from support.nodes import Cluster, Node, PulseUser, pulse_permissions, rabbitmq_available


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
def make_listener(broker):
    """``make_listener(**options)``: a Listener of a fresh name on the broker on 5672 (exchanges
    declared, quick retries), whose queues and exchange are deleted after the test."""
    from tclisten.app import Listener

    def make(**options):
        options.setdefault("retry", {"max_attempts": 3, "delay": 0.05, "backoff": 2.0})
        app = Listener(f"test-{uuid.uuid4().hex[:8]}", broker_url=broker.url, declare_exchanges=True, **options)
        broker.forget_listener(app)
        return app

    return make


@pytest.fixture
def broker(broker_url):
    """Publishes like Taskcluster on the real broker; removes what the test created, even
    after a broker restart or a cut connection."""
    from support.faultkit import close_broker
    from support.listener_kit import Broker

    b = Broker(broker_url)
    yield b
    close_broker(b)


def _need_rabbitmq() -> None:
    reason = rabbitmq_available()
    if reason:
        if os.environ.get("TCLISTEN_REQUIRE_RABBITMQ"):
            pytest.fail(f"private RabbitMQ nodes cannot start: {reason}")
        pytest.skip(f"private RabbitMQ nodes cannot start: {reason}")


@pytest.fixture(scope="module")
def private_node():
    _need_rabbitmq()
    node = Node()
    try:
        node.start()
        yield node
    finally:
        node.destroy()


@pytest.fixture(scope="session")
def cluster():
    _need_rabbitmq()
    c = Cluster(3)
    try:
        c.start()
        yield c
    finally:
        c.destroy()


@pytest.fixture
def node_factory():
    """``node_factory(**options)`` starts a private node of the test's own (options of
    :class:`support.nodes.Node`, e.g. ``consumer_timeout=3000``); all are destroyed after the test."""
    _need_rabbitmq()
    nodes = []

    def make(**options) -> Node:
        node = Node(**options)
        nodes.append(node)
        return node.start()

    yield make
    for node in nodes:
        node.destroy()


@pytest.fixture(autouse=True)
def _heal_private_brokers(request):
    """After each test that used them, bring back what it stopped or killed (also when it failed),
    so one test's broken node does not fail the next ones."""
    used = [request.getfixturevalue(name) for name in ("private_node", "cluster") if name in request.fixturenames]
    yield
    for thing in used:
        thing.heal()


_users = itertools.count(1)


@pytest.fixture
def pulse_user(private_node):
    """A Pulse account on the private node: configure/write ``^(queue/<user>/.*|exchange/<user>/.*)``,
    read ``^(queue/<user>/.*|exchange/.*)`` on ``/``.  Its queues and exchanges are deleted after
    the test, then the user."""
    name = f"pulse-{next(_users)}-{secrets.token_hex(2)}"
    password = secrets.token_hex(8)
    private_node.add_user(name, password)
    private_node.set_permissions(name, *pulse_permissions(name))
    user = PulseUser(private_node.url_for(name, password), name=name, password=password, node=private_node)
    yield user
    private_node.heal()
    user.cleanup()
