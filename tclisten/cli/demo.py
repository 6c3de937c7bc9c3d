"""``tclisten demo``: the example reactor, offline, end to end.

Sample Taskcluster messages (``examples/messages/all.jsonl``) are published on kombu's
in-memory transport (``memory://``) the way Taskcluster's queue publishes them; the example
reactor (``examples/reactor.py``) and group watcher consume them through their real
bindings, matcher, consumer loop and handlers (``Listener.run()``); the handlers' REST
calls go to a fake Taskcluster on loopback that verifies Hawk signatures and scopes, with
a client whose access token is made for this run.  No broker, no Taskcluster account.

    python -m tclisten.cli.demo            # or: tclisten demo
    tclisten demo --max-reruns-per-group 3 --messages my-recording.jsonl

It prints a line per message and per decision, a summary, and exits 0 when every
message was handled.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import sys
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence, TextIO

from kombu import Connection, Exchange, Producer

logger = logging.getLogger(__name__)

__all__ = ["SampleQueue", "examples_dir", "main"]

BROKER_URL = "memory://localhost/"
LISTENER_NAME = "ci-reactor-demo"
CLIENT_ID = "tclisten-demo"
SCOPES = ("queue:get-task:*", "queue:status:*", "queue:rerun-task:*", "queue:list-task-group:*")


def examples_dir() -> Path:
    """Where the examples are: installed as ``tclisten/examples``, or ``examples/`` of a
    checkout."""
    package = Path(__file__).resolve().parents[1]
    candidates = (package / "examples", package.parent / "examples")
    for candidate in candidates:
        if (candidate / "reactor.py").is_file() and (candidate / "messages").is_dir():
            return candidate
    from ..exceptions import ConfigError

    raise ConfigError(f"the examples are neither in {candidates[0]} nor in {candidates[1]}")


def _load_example(path: Path) -> Any:
    """Import an example file as a module of its own (the examples are scripts, not a
    package one can rely on), the way YAML handlers are imported."""
    from ..config import import_object

    return import_object(str(path))


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class SampleQueue:
    """A tiny stateful Taskcluster queue behind a fake server, knowing the tasks of some
    message records: ``task``, ``status``, ``rerunTask`` (adds a pending run) and
    ``listTaskGroup``.

    >>> from tclisten.testing.factories import message_for
    >>> queue = SampleQueue([message_for("QueueEvents.taskFailed", taskId="T").as_record()])
    >>> queue.status_of("T")["state"]
    'failed'
    """

    def __init__(self, records: Sequence[dict]) -> None:
        self._lock = threading.Lock()
        self._status: dict[str, dict] = {}
        for record in records:
            status = record.get("body", {}).get("status")
            if isinstance(status, dict) and "taskId" in status and "runs" in status:
                known = self._status.get(status["taskId"])
                if known is None or _progress(status) >= _progress(known):
                    self._status[status["taskId"]] = status  # the latest news of each task

    def status_of(self, task_id: str) -> dict | None:
        with self._lock:
            return self._status.get(task_id)

    def _definition(self, status: dict) -> dict:
        now = datetime.datetime.now(datetime.timezone.utc)
        return {
            "provisionerId": status.get("provisionerId"), "workerType": status.get("workerType"),
            "taskQueueId": status.get("taskQueueId"), "schedulerId": status.get("schedulerId"),
            "projectId": status.get("projectId", "none"), "taskGroupId": status.get("taskGroupId"),
            "created": _stamp(now - datetime.timedelta(hours=1)),
            "deadline": _stamp(now + datetime.timedelta(days=1)),
            "expires": _stamp(now + datetime.timedelta(days=365)),
            "metadata": {"name": f"{status.get('workerType', 'task')}/{status['taskId'][:8]}",
                         "owner": "dev@example.com", "source": "https://example.com/ci.yml",
                         "description": "a sample task"},
            "payload": {}, "routes": [], "scopes": [], "tags": {}, "extra": {}, "dependencies": [],
        }

    def install(self, fake: Any) -> None:
        """Answer the queue functions of ``fake`` (a FakeTaskcluster) from this state."""
        from ..testing.fakeserver import Response, error_body

        def known(call: Any) -> dict | Response:
            status = self.status_of(call.args.get("taskId", ""))
            if status is None:
                return Response(404, error_body("ResourceNotFound", f"no task {call.args.get('taskId')}"))
            return status

        def task(call: Any) -> Any:
            status = known(call)
            return status if isinstance(status, Response) else self._definition(status)

        def status(call: Any) -> Any:
            found = known(call)
            return found if isinstance(found, Response) else {"status": found}

        def rerun(call: Any) -> Any:
            with self._lock:
                found = self._status.get(call.args["taskId"])
                if found is None:
                    return Response(404, error_body("ResourceNotFound", f"no task {call.args['taskId']}"))
                now = _stamp(datetime.datetime.now(datetime.timezone.utc))
                runs = [*found["runs"], {"runId": len(found["runs"]), "state": "pending",
                                         "reasonCreated": "rerun", "scheduled": now}]
                found = self._status[call.args["taskId"]] = {**found, "state": "pending", "runs": runs}
            return {"status": found}

        def list_group(call: Any) -> Any:
            group = call.args["taskGroupId"]
            with self._lock:
                tasks = [{"status": s, "task": self._definition(s)} for s in self._status.values()
                         if s.get("taskGroupId") == group]
            return {"taskGroupId": group, "tasks": tasks}

        fake.respond("queue", "task", task)
        fake.respond("queue", "status", status)
        fake.respond("queue", "rerunTask", rerun)
        fake.respond("queue", "listTaskGroup", list_group)


_STATE_ORDER = ("unscheduled", "pending", "running", "completed", "failed", "exception")


def _progress(status: dict) -> tuple[int, int]:
    state = status.get("state")
    return len(status.get("runs") or ()), _STATE_ORDER.index(state) if state in _STATE_ORDER else 0


def _label(record: dict) -> str:
    """``task-exception (worker-shutdown) QotBKzuQQ2SiLOUqQ2oabw``: what a sample is."""
    kind = record["exchange"].rsplit("/", 1)[-1]
    body = record.get("body") or {}
    found = body.get("status")
    status: dict = found if isinstance(found, dict) else {}
    if status.get("runs") and status.get("state") == "exception":
        kind += f" ({status['runs'][-1].get('reasonResolved', '?')})"
    ident = status.get("taskId") or body.get("taskGroupId") or record["routing_key"]
    return f"{kind} {ident}"


class _Printer(logging.Handler):
    """Prints the handlers' log lines as they come, one per decision."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(logging.INFO)
        self.out = out
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        handler = record.name.rsplit("tclisten.handler.", 1)[-1]
        line = f"  {handler}: {self.format(record)}"
        self.lines.append(line)
        print(line, file=self.out, flush=True)


def _stop_when_idle(app: Any, expected: int, timeout: float, timed_out: threading.Event) -> None:
    """Stop ``app`` once it has handled ``expected`` deliveries and its queue stays empty."""
    deadline = time.monotonic() + timeout
    calm = 0
    with Connection(BROKER_URL) as conn:
        channel = conn.channel()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            waiting = channel.queue_declare(app.queue_name, passive=True).message_count
            stats = app.stats
            settled = stats.handler_calls >= expected and stats.received == stats.handler_calls
            calm = calm + 1 if settled and waiting == 0 else 0
            if calm >= 3:  # three quiet looks in a row: nothing left in flight or in the queue
                break
        else:
            timed_out.set()
        channel.close()
    app.stop()


def _forget(names: Sequence[str], exchanges: Sequence[str]) -> None:
    """Remove what the demo declared on the process-wide memory broker."""
    with Connection(BROKER_URL) as conn:
        channel = conn.channel()
        for name in names:
            channel.queue_delete(name)
        for name in exchanges:
            channel.exchange_delete(name)
        channel.close()


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tclisten demo", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", metavar="FILE", help="JSON lines of message records "
                        "(default: the sample messages of the examples)")
    parser.add_argument("--max-reruns-per-group", type=int, default=1, metavar="N",
                        help="the reactor's budget per task group (default: 1)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


@dataclass
class _Examples:
    """The example reactor and group watcher, and the listener they make together."""

    reactor: Any
    watcher: Any
    app: Any

    @classmethod
    def load(cls, fake: Any, max_reruns_per_group: int) -> _Examples:
        examples = examples_dir()
        reactor_module = _load_example(examples / "reactor.py")
        watcher_module = _load_example(examples / "group_watcher.py")
        reactor = reactor_module.Reactor()
        watcher = watcher_module.GroupWatcher()
        app = reactor_module.create_listener(
            LISTENER_NAME, reactor=reactor, broker_url=BROKER_URL, declare_exchanges=True,
            taskcluster=fake.options, concurrency=1, retry={"max_attempts": 3, "delay": 0},
            config={"max_reruns_per_group": max_reruns_per_group})
        from ..exchanges import QueueEvents

        app.add_handler(watcher.on_group_resolved, QueueEvents.taskGroupResolved, name="report-resolved-groups")
        return cls(reactor, watcher, app)


@dataclass
class _Outcome:
    """What one run of the listener came to."""

    expected: int  # deliveries some binding matches
    stopped: Any  # the listener's StopSummary
    timed_out: bool


def _print_setup(app: Any, fake: Any, out: TextIO) -> None:
    print("tclisten demo: the example reactor, offline", file=out)
    print("  broker       kombu memory:// (inside this process)", file=out)
    print(f"  Taskcluster  fake deployment at {fake.root_url}: Hawk and scopes verified, client "
          f"{CLIENT_ID} with a key made for this run", file=out)
    print(f"  listener     {app.name}, queue {app.queue_name}", file=out)
    width = max(len(b.exchange) for b in app.bindings)
    pattern_width = max(len(b.pattern) for b in app.bindings)
    for b in app.bindings:
        print(f"    {b.exchange:<{width}}  {b.pattern:<{pattern_width}}  -> {b.handler}", file=out)


@contextlib.contextmanager
def _handler_logs_printed(out: TextIO) -> Iterator[None]:
    """The handlers' log lines go to ``out`` (and only there) while inside."""
    logs = _Printer(out)
    handler_logger = logging.getLogger("tclisten.handler")
    saved = (handler_logger.propagate, handler_logger.level)
    handler_logger.addHandler(logs)
    handler_logger.propagate, handler_logger.level = False, logging.INFO
    try:
        yield
    finally:
        handler_logger.removeHandler(logs)
        handler_logger.propagate, handler_logger.level = saved


def _publish(app: Any, records: Sequence[dict], source: Path, out: TextIO) -> int:
    """Declare the listener and publish ``records`` as Taskcluster would; returns how many of
    them some binding matches (the deliveries to wait for)."""
    exchanges = sorted({r["exchange"] for r in records})
    expected = 0
    with Connection(BROKER_URL) as conn:
        channel = conn.channel()
        for name in exchanges:  # the publisher owns its exchanges
            Exchange(name, "topic", durable=True)(channel).declare()
        app.declare(conn)
        print(f"\npublishing {len(records)} message(s) from {source}:", file=out)
        producer = Producer(channel)
        label_width = max(len(_label(r)) for r in records)
        for record in records:
            matched = app.dispatcher.match(record["exchange"], record["routing_key"])
            expected += bool(matched)
            where = (f"-> {', '.join(h.name for h in matched)}" if matched
                     else "no binding matches: the broker drops it")
            print(f"  {_label(record):<{label_width}}  {where}", file=out)
            producer.publish(record["body"], exchange=record["exchange"],
                             routing_key=record["routing_key"], headers=dict(record.get("headers") or {}),
                             serializer="json", delivery_mode=2, retry=False)
        channel.close()
    return expected


def _run(app: Any, records: Sequence[dict], source: Path, timeout: float, out: TextIO) -> _Outcome:
    """Publish, run the listener until its queue is empty, and leave the memory broker clean."""
    timed_out = threading.Event()
    try:
        with _handler_logs_printed(out), warnings.catch_warnings():
            # memory:// files unroutable messages under "ae.undeliver" with a warning;
            # RabbitMQ drops them silently, and so does this demo
            warnings.simplefilter("ignore")
            expected = _publish(app, records, source, out)
            print("\nrunning the listener (Listener.run) until its queue is empty:", file=out)
            stopper = threading.Thread(target=_stop_when_idle, args=(app, expected, timeout, timed_out),
                                       name="demo-stopper", daemon=True)
            stopper.start()
            stopped = app.run()
            stopper.join()
    finally:
        _forget([*app.queue_names(), "ae.undeliver"],
                [*sorted({r["exchange"] for r in records}), app.topology.exchange.name])
    return _Outcome(expected, stopped, timed_out.is_set())


def _print_summary(demo: _Examples, outcome: _Outcome, records: Sequence[dict], calls: Sequence[Any],
                   elapsed: float, timeout: float, out: TextIO) -> int:
    """Print what happened; returns the exit status (0: every message handled)."""
    stats = demo.app.stats
    counted = Counter(f"{c.service}.{c.function}" for c in calls)
    verified = all(c.auth == "hawk" and c.client_id == CLIENT_ID for c in calls)
    refused = [c for c in calls if c.status and c.status >= 400]
    actions = Counter(d.action for d in demo.reactor.decisions)
    print(f"\nsummary: {len(records)} published, {stats.received} delivered, {stats.handler_calls} handler "
          f"call(s), {stats.retried} retried, {stats.parked} parked, in {elapsed:.1f} s", file=out)
    print(f"  listener stopped: {outcome.stopped}", file=out)
    print("  reactor decisions: " + (", ".join(f"{n} {a}" for a, n in sorted(actions.items())) or "none"), file=out)
    print(f"  group reports: {len(demo.watcher.reports)}", file=out)
    print("  REST calls" + (" (all Hawk-signed and verified)" if verified and counted else "") + ": "
          + (", ".join(f"{name} x{n}" for name, n in sorted(counted.items())) or "none")
          + (f"; {len(refused)} refused" if refused else ""), file=out)
    if outcome.timed_out:
        print(f"  the listener was still busy after {timeout:.0f} s", file=out)
    failed = outcome.timed_out or stats.parked or stats.received < outcome.expected or refused
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the demo; returns the exit status (0: every message handled)."""
    from ..testing.kit import FakeTaskclusterService, read_records

    out = out or sys.stdout
    args = _arguments(argv)
    source = Path(args.messages) if args.messages else examples_dir() / "messages" / "all.jsonl"
    records = read_records(source)
    if not records:
        print(f"tclisten demo: {source} holds no message", file=sys.stderr)
        return 2

    started = time.monotonic()
    with FakeTaskclusterService(client_id=CLIENT_ID, scopes=SCOPES) as tc:
        SampleQueue(records).install(tc)
        demo = _Examples.load(tc, args.max_reruns_per_group)
        _print_setup(demo.app, tc, out)
        outcome = _run(demo.app, records, source, args.timeout, out)
        calls = tc.calls
    return _print_summary(demo, outcome, records, calls, time.monotonic() - started, args.timeout, out)

if __name__ == "__main__":
    sys.exit(main())
