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
import datetime
import importlib.util
import logging
import sys
import threading
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Sequence, TextIO

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
    package one can rely on)."""
    name = f"_tclisten_demo_{path.stem}"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


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
    status = body.get("status") if isinstance(body.get("status"), dict) else {}
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


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the demo; returns the exit status (0: every message handled)."""
    from ..testing.kit import FakeTaskclusterService, read_records

    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="tclisten demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", metavar="FILE", help="JSON lines of message records "
                        "(default: the sample messages of the examples)")
    parser.add_argument("--max-reruns-per-group", type=int, default=1, metavar="N",
                        help="the reactor's budget per task group (default: 1)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    examples = examples_dir()
    reactor_module = _load_example(examples / "reactor.py")
    watcher_module = _load_example(examples / "group_watcher.py")
    source = Path(args.messages) if args.messages else examples / "messages" / "all.jsonl"
    records = read_records(source)
    if not records:
        print(f"tclisten demo: {source} holds no message", file=sys.stderr)
        return 2

    started = time.monotonic()
    with FakeTaskclusterService(client_id=CLIENT_ID, scopes=SCOPES) as tc:
        SampleQueue(records).install(tc)
        reactor = reactor_module.Reactor()
        watcher = watcher_module.GroupWatcher()
        app = reactor_module.create_listener(
            LISTENER_NAME, reactor=reactor, broker_url=BROKER_URL, declare_exchanges=True,
            taskcluster=tc.options, concurrency=1, retry={"max_attempts": 3, "delay": 0},
            config={"max_reruns_per_group": args.max_reruns_per_group})
        from ..exchanges import QueueEvents

        app.add_handler(watcher.on_group_resolved, QueueEvents.taskGroupResolved, name="report-resolved-groups")

        print("tclisten demo: the example reactor, offline", file=out)
        print("  broker       kombu memory:// (inside this process)", file=out)
        print(f"  Taskcluster  fake deployment at {tc.root_url}: Hawk and scopes verified, client "
              f"{CLIENT_ID} with a key made for this run", file=out)
        print(f"  listener     {app.name}, queue {app.queue_name}", file=out)
        width = max(len(b.exchange) for b in app.bindings)
        pattern_width = max(len(b.pattern) for b in app.bindings)
        for b in app.bindings:
            print(f"    {b.exchange:<{width}}  {b.pattern:<{pattern_width}}  -> {b.handler}", file=out)

        exchanges = sorted({r["exchange"] for r in records})
        expected = 0
        logs = _Printer(out)
        handler_logger = logging.getLogger("tclisten.handler")
        saved = (handler_logger.propagate, handler_logger.level)
        handler_logger.addHandler(logs)
        handler_logger.propagate, handler_logger.level = False, logging.INFO
        timed_out = threading.Event()
        try:
            with warnings.catch_warnings():
                # memory:// files unroutable messages under "ae.undeliver" with a warning;
                # RabbitMQ drops them silently, and so does this demo
                warnings.simplefilter("ignore")
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
                print("\nrunning the listener (Listener.run) until its queue is empty:", file=out)
                stopper = threading.Thread(target=_stop_when_idle, args=(app, expected, args.timeout, timed_out),
                                           name="demo-stopper", daemon=True)
                stopper.start()
                stopped = app.run()
                stopper.join()
        finally:
            handler_logger.removeHandler(logs)
            handler_logger.propagate, handler_logger.level = saved
            topology = app.topology
            _forget([*app.queue_names(), "ae.undeliver"],
                    [*exchanges, topology.exchange.name])

        calls = Counter(f"{c.service}.{c.function}" for c in tc.calls)
        verified = all(c.auth == "hawk" and c.client_id == CLIENT_ID for c in tc.calls)
        refused = [c for c in tc.calls if c.status and c.status >= 400]

    stats = app.stats
    actions = Counter(d.action for d in reactor.decisions)
    elapsed = time.monotonic() - started
    print(f"\nsummary: {len(records)} published, {stats.received} delivered, {stats.handler_calls} handler "
          f"call(s), {stats.retried} retried, {stats.parked} parked, in {elapsed:.1f} s", file=out)
    print(f"  listener stopped: {stopped}", file=out)
    print("  reactor decisions: " + (", ".join(f"{n} {a}" for a, n in sorted(actions.items())) or "none"), file=out)
    print(f"  group reports: {len(watcher.reports)}", file=out)
    print("  REST calls" + (" (all Hawk-signed and verified)" if verified and calls else "") + ": "
          + (", ".join(f"{name} x{n}" for name, n in sorted(calls.items())) or "none")
          + (f"; {len(refused)} refused" if refused else ""), file=out)
    failed = timed_out.is_set() or stats.parked or stats.received < expected or refused
    if timed_out.is_set():
        print(f"  the listener was still busy after {args.timeout:.0f} s", file=out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
