"""The users' test kit: a listener's real loop on a private in-memory broker, a loopback
Taskcluster that verifies Hawk, and schema-valid Taskcluster messages.

- :mod:`.kit`: :class:`ListenerTestKit`, :class:`FakeTaskclusterService`, :func:`read_records`;
- :mod:`.factories`: :func:`message_for` and the other message factories;
- :mod:`.fakeserver` and :mod:`.fakeauth`: the fake Taskcluster deployment and its auth checks;
- :mod:`.pytest_plugin`: the ``tclisten_kit`` and ``fake_taskcluster`` fixtures.

>>> from tclisten.testing import message_for
>>> message_for("QueueEvents.taskCompleted").exchange
'exchange/taskcluster-queue/v1/task-completed'
"""

from __future__ import annotations

from .factories import FactoryMessage, build_routing_key, factory_for, factory_names, message_for
from .kit import Failure, FakeTaskclusterService, Handled, ListenerTestKit, read_records

__all__ = [
    "FactoryMessage",
    "Failure",
    "FakeTaskclusterService",
    "Handled",
    "ListenerTestKit",
    "build_routing_key",
    "factory_for",
    "factory_names",
    "message_for",
    "read_records",
]
