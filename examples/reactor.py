"""A reactor daemon: rerun tasks that died of an infrastructure problem, within a budget.

Run it against Pulse and a Taskcluster deployment::

    PULSE_USERNAME=... PULSE_PASSWORD=... TASKCLUSTER_ROOT_URL=https://tc.example.com \\
    TASKCLUSTER_CLIENT_ID=... TASKCLUSTER_ACCESS_TOKEN=... python examples/reactor.py

``tclisten demo`` runs it offline, on sample messages and a fake Taskcluster.

When a run of a task ends in *exception* for an infrastructure reason (``worker-shutdown``,
``internal-error``, ``claim-expired``, ... : ``config["reasons"]``), the reactor asks the
queue for the task and its current status, and reruns it (``queue.rerunTask``) unless

- the task has moved on already (a newer run, or the same message delivered twice),
- its deadline has passed (the queue would refuse),
- the budget is spent: ``max_reruns_per_group`` reruns per task group, and
  ``max_reruns_per_hour`` reruns in any hour overall.

Every decision is logged on the handler's logger (and kept in ``Reactor.decisions``).
The client needs ``queue:get-task:*``, ``queue:status:*`` and ``queue:rerun-task:*`` (or
narrower ``queue:rerun-task:<schedulerId>/<taskGroupId>/*``).
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from tclisten import Listener, QueueEvents

logger = logging.getLogger(__name__)

#: What the listener's ``config`` holds unless told otherwise.
DEFAULTS: Mapping[str, Any] = {
    "reasons": ["worker-shutdown", "internal-error", "claim-expired", "intermittent-task",
                "resource-unavailable"],
    "max_reruns_per_group": 3,
    "max_reruns_per_hour": 20,
}


@dataclass(frozen=True)
class Decision:
    """What the reactor did about one task-exception message."""

    task_id: str
    task_group_id: str
    reason: str
    action: str  # "rerun", "skip" or "ignore"
    why: str

    def __str__(self) -> str:
        return f"{self.action} {self.task_id} ({self.reason}): {self.why}"


class Budget:
    """How many reruns are still allowed: per task group, and in a sliding hour.

    >>> budget = Budget(clock=lambda: 0.0)
    >>> budget.take("G", per_group=1, per_hour=5), budget.take("G", per_group=1, per_hour=5)
    (None, 'budget spent: 1 rerun(s) in task group G already (max_reruns_per_group 1)')
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._per_group: dict[str, int] = {}
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()  # handlers may run on several worker threads

    def take(self, group: str, *, per_group: int, per_hour: int) -> str | None:
        """Spend one rerun; ``None`` if allowed, else why not (nothing spent)."""
        with self._lock:
            now = self._clock()
            while self._recent and self._recent[0] <= now - 3600:
                self._recent.popleft()
            used = self._per_group.get(group, 0)
            if used >= per_group:
                return f"budget spent: {used} rerun(s) in task group {group} already (max_reruns_per_group {per_group})"
            if len(self._recent) >= per_hour:
                return f"budget spent: {len(self._recent)} rerun(s) in the last hour (max_reruns_per_hour {per_hour})"
            self._per_group[group] = used + 1
            self._recent.append(now)
            return None

    def refund(self, group: str) -> None:
        """Give back the last rerun of ``group`` (its rerun call failed)."""
        with self._lock:
            self._per_group[group] = max(0, self._per_group.get(group, 0) - 1)
            if self._recent:
                self._recent.pop()


def _deadline_passed(deadline: str | None, now: datetime.datetime) -> bool:
    if not deadline:
        return False
    when = datetime.datetime.fromisoformat(deadline.replace("Z", "+00:00"))
    return when <= now


class Reactor:
    """The handler and its memory (the budget, the decisions made)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime.datetime] | None = None) -> None:
        self.budget = Budget(clock)
        self.decisions: deque[Decision] = deque(maxlen=1000)
        self._now = now or (lambda: datetime.datetime.now(datetime.timezone.utc))

    def on_task_exception(self, message: Any, ctx: Any) -> Decision:
        """Handler of ``QueueEvents.taskException``: decide, act, log."""
        decision = self.decide(message, ctx)
        self.decisions.append(decision)
        log = ctx.logger.warning if decision.action == "rerun" else ctx.logger.info
        log("%s", decision)
        return decision

    def decide(self, message: Any, ctx: Any) -> Decision:
        config = {**DEFAULTS, **ctx.config}
        task_id = message.routing.taskId
        status = message.body["status"]
        run_id = message.body.get("runId", len(status["runs"]) - 1)
        run = next((r for r in status["runs"] if r["runId"] == run_id), status["runs"][-1])
        reason = run.get("reasonResolved", "unknown")
        group = status["taskGroupId"]

        def decided(action: str, why: str) -> Decision:
            return Decision(task_id, group, reason, action, why)

        if reason not in config["reasons"]:
            return decided("ignore", f"run {run_id} ended in {reason}, not an infrastructure failure")
        current = ctx.queue.status(task_id)["status"]
        latest = current["runs"][-1] if current.get("runs") else {}
        if latest.get("runId", run_id) > run_id or current.get("state") != "exception":
            return decided("skip", f"already moved on: run {latest.get('runId')} is {current.get('state')}")
        task = ctx.queue.task(task_id)
        name = task.get("metadata", {}).get("name", task_id)
        if _deadline_passed(task.get("deadline"), self._now()):
            return decided("skip", f"{name!r} is past its deadline {task['deadline']}")
        refused = self.budget.take(group, per_group=config["max_reruns_per_group"],
                                   per_hour=config["max_reruns_per_hour"])
        if refused:
            return decided("skip", f"{name!r}: {refused}")
        try:
            answer = ctx.queue.rerunTask(task_id)
        except Exception:
            self.budget.refund(group)  # tclisten retries the message; the budget is not spent
            raise
        new_runs = answer.get("status", {}).get("runs") or [{}]
        return decided("rerun", f"{name!r} rerun as run {new_runs[-1].get('runId', '?')} "
                                f"(group {group})")


def create_listener(name: str = "ci-reactor", *, reactor: Reactor | None = None,
                    config: Mapping[str, Any] | None = None, **options: Any) -> Listener:
    """The reactor's listener; ``options`` are :class:`~tclisten.app.Listener` keywords
    (``broker_url``, ``taskcluster``, ``concurrency``, ...), ``config`` overrides DEFAULTS.
    Pass your own ``reactor`` to read its decisions afterwards."""
    app = Listener(name, config={**DEFAULTS, **(config or {})}, **options)
    reactor = reactor or Reactor()
    app.add_handler(reactor.on_task_exception, QueueEvents.taskException, name="rerun-infrastructure-failures")
    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    create_listener(concurrency=4).run()
