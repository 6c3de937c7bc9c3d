"""Fixtures for tests that need a broker of their own: to stop, restart, kill or cluster it.

The machine's broker on 5672 (``broker_url`` / ``broker`` in tests/conftest.py) is never stopped or
reconfigured; these fixtures start private nodes with :mod:`support.nodes` instead.

* ``private_node`` (module): one private single node (:class:`support.nodes.Node`); ``.url`` is
  guest (administrator).  A test may stop_app/kill/stop it: it is healed after each test.
* ``cluster`` (session): three clustered nodes (:class:`support.nodes.Cluster`), ``.urls``,
  ``.failover_url``.  A test may stop or kill nodes: they are started again after each test.
* ``node_factory`` (function): ``node_factory(consumer_timeout=3000, ...)`` starts a node of the
  test's own with those options, destroyed after the test.
* ``pulse_user`` (function): a user on ``private_node`` with exactly PulseGuardian's permissions;
  the value is its URL (a ``str``) with ``.name``, ``.password``, ``.node`` and ``.admin_url``
  (guest, to declare ``exchange/taskcluster-queue/v1/...`` as Taskcluster would).

Without RabbitMQ installed the fixtures skip (``TCLISTEN_REQUIRE_RABBITMQ=1``: fail instead).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import secrets
from pathlib import Path

import pytest


def _reexport_root_constants() -> None:
    """Test modules do ``from conftest import ROOT`` / ``BROKER_URL`` (tests/conftest.py).  With
    pytest's prepend import mode a module named ``conftest`` is whichever conftest.py was imported
    last, which may be this one: so this one offers the same constants (the UPPER_CASE names of
    tests/conftest.py, read from that file; its fixtures are not copied)."""
    path = Path(__file__).resolve().parent.parent / "conftest.py"
    spec = importlib.util.spec_from_file_location("_tclisten_tests_root_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    globals().update({k: v for k, v in vars(module).items() if k.isupper() and not k.startswith("_")})


_reexport_root_constants()

from support.nodes import Cluster, Node, PulseUser, pulse_permissions, rabbitmq_available


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
