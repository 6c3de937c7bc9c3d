"""A task-group watcher: say how each task group ended when it resolves.

    PULSE_USERNAME=... PULSE_PASSWORD=... TASKCLUSTER_ROOT_URL=https://tc.example.com \\
    python examples/group_watcher.py [schedulerId]

The queue publishes ``task-group-resolved`` when every task of a group is resolved (again
if tasks are added later).  The watcher then lists the group's tasks (``queue.listTaskGroup``,
every page) and reports one line: how many tasks, how many in each state, and the names of
those that did not complete.  With a ``schedulerId`` it only watches that scheduler's groups
(e.g. ``taskcluster-github``).  The client needs ``queue:list-task-group:*``.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable

from tclisten import Listener, QueueEvents

logger = logging.getLogger(__name__)

#: Names listed per state in a report at most (big groups stay readable).
MAX_NAMES = 5


@dataclass(frozen=True)
class GroupReport:
    """How one task group ended."""

    task_group_id: str
    scheduler_id: str
    states: dict
    unsuccessful: tuple  # (state, task name) of tasks that did not complete

    @property
    def total(self) -> int:
        return sum(self.states.values())

    @property
    def ok(self) -> bool:
        return not self.unsuccessful

    def __str__(self) -> str:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(self.states.items()))
        text = f"task group {self.task_group_id} resolved: {self.total} task(s), {counts or 'none listed'}"
        if self.unsuccessful:
            names = [f"{name} ({state})" for state, name in self.unsuccessful[:MAX_NAMES]]
            more = len(self.unsuccessful) - len(names)
            text += "; not completed: " + ", ".join(names) + (f" and {more} more" if more > 0 else "")
        return text


def summarize(task_group_id: str, scheduler_id: str, tasks: Iterable[dict]) -> GroupReport:
    """A report from ``listTaskGroup`` entries (``{"status": {...}, "task": {...}}``); pure.

    >>> print(summarize("G", "s", [{"status": {"state": "completed"}, "task": {}},
    ...                            {"status": {"state": "failed"}, "task": {"metadata": {"name": "lint"}}}]))
    task group G resolved: 2 task(s), 1 completed, 1 failed; not completed: lint (failed)
    """
    states: Counter = Counter()
    unsuccessful = []
    for entry in tasks:
        status = entry.get("status", {})
        state = status.get("state", "unknown")
        states[state] += 1
        if state != "completed":
            name = entry.get("task", {}).get("metadata", {}).get("name") or status.get("taskId", "?")
            unsuccessful.append((state, name))
    return GroupReport(task_group_id, scheduler_id, dict(states), tuple(unsuccessful))


class GroupWatcher:
    """The handler and the reports it made."""

    def __init__(self) -> None:
        self.reports: list[GroupReport] = []
        self._lock = threading.Lock()

    def on_group_resolved(self, message: Any, ctx: Any) -> GroupReport:
        """Handler of ``QueueEvents.taskGroupResolved``."""
        group = message.routing.taskGroupId
        tasks = ctx.queue.iterate("listTaskGroup", group, items="tasks")
        report = summarize(group, message.routing.schedulerId, tasks)
        with self._lock:
            self.reports.append(report)
        (ctx.logger.info if report.ok else ctx.logger.warning)("%s", report)
        return report


def create_listener(name: str = "group-watcher", *, scheduler_id: str | None = None,
                    watcher: GroupWatcher | None = None, **options: Any) -> Listener:
    """The watcher's listener (``options``: :class:`~tclisten.app.Listener` keywords)."""
    app = Listener(name, **options)
    watcher = watcher or GroupWatcher()
    fields = {"schedulerId": scheduler_id} if scheduler_id else {}
    app.add_handler(watcher.on_group_resolved, QueueEvents.taskGroupResolved, name="report-resolved-groups",
                    **fields)
    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    create_listener(scheduler_id=sys.argv[1] if len(sys.argv) > 1 else None).run()
