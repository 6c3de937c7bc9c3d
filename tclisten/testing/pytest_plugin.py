"""pytest fixtures for testing tclisten listeners (registered as the ``tclisten`` plugin).

``fake_taskcluster``: a started :class:`~tclisten.testing.kit.FakeTaskclusterService` (a loopback
Taskcluster that checks Hawk and records calls), stopped after the test.

``tclisten_kit``: a function ``tclisten_kit(app)`` that returns a
:class:`~tclisten.testing.kit.ListenerTestKit` for the listener, its REST clients pointed at
``fake_taskcluster``; closed after the test.

.. code-block:: python

    from myproject.reactor import app
    from tclisten import QueueEvents

    def test_reruns_infrastructure_failures(tclisten_kit, fake_taskcluster):
        fake_taskcluster.respond("queue", "rerunTask", {"status": {"state": "pending"}})
        kit = tclisten_kit(app)
        kit.publish(QueueEvents.taskException, reasonResolved="internal-error")
        kit.run_until_idle()
        assert fake_taskcluster.calls_to("queue", "rerunTask")

Without the installed entry point, enable it with ``pytest_plugins = ["tclisten.testing.pytest_plugin"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

if TYPE_CHECKING:  # the kit (kombu, the fake server) is imported by the fixtures, not by pytest's startup
    from .kit import FakeTaskclusterService, ListenerTestKit

__all__ = ["fake_taskcluster", "tclisten_kit"]


@pytest.fixture
def fake_taskcluster() -> Iterator[FakeTaskclusterService]:
    """A running fake Taskcluster with one all-scopes client (``.options`` for clients)."""
    from .kit import FakeTaskclusterService

    with FakeTaskclusterService() as service:
        yield service


@pytest.fixture
def tclisten_kit(fake_taskcluster: FakeTaskclusterService) -> Iterator[Callable[..., ListenerTestKit]]:
    """``tclisten_kit(app, **options)``: a test kit for ``app`` wired to ``fake_taskcluster``."""
    from .kit import ListenerTestKit

    kits: list[ListenerTestKit] = []

    def make(app: Any, **options: Any) -> ListenerTestKit:
        options.setdefault("taskcluster", fake_taskcluster)
        kit = ListenerTestKit(app, **options)
        kits.append(kit)
        return kit

    yield make
    for kit in reversed(kits):
        kit.close()
