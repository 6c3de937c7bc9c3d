"""Every example runs here, for real: on RabbitMQ (a virtual host of its own, so the examples
keep Taskcluster's real exchange names) or through the test kit, with a fake Taskcluster
that verifies Hawk.  Each run stops by itself."""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Producer

from support.faultkit import wait_until
from support.listener_kit import run_listener
from tclisten.config import build_listener, load_config
from tclisten.cli.demo import SCOPES, SampleQueue
from tclisten.exchanges import QueueEvents
from tclisten.testing.fakeserver import Response, error_body
from tclisten.testing import FakeTaskclusterService, ListenerTestKit, message_for, read_records

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RECORDS = read_records(EXAMPLES / "messages" / "all.jsonl")
GROUP = "Wt-6mxx-QlCQtBZXj5DNPw"
INFRA = "QotBKzuQQ2SiLOUqQ2oabw"  # worker-shutdown
SECOND_INFRA = "L0sWmhxuSc6YJz4FQT5IZA"  # internal-error, same group
CANCELED = "NSa61LI7RP67tmLiU056gQ"
FAILED = "MiRZJtfeT3m0o5UemH-xlA"


def load(name: str):
    """Import an example file under a name of its own (examples are scripts)."""
    module_name = f"_example_{name}_{uuid.uuid4().hex[:6]}"
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def record_of(task_id: str) -> dict:
    return next(r for r in RECORDS if r["body"].get("status", {}).get("taskId") == task_id
                and r["exchange"].endswith(("task-exception", "task-failed", "task-completed")))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------- the broker


@pytest.fixture(scope="module")
def vhost_url(private_node):
    """A broker of this module's own (a private node: the examples declare Taskcluster's
    exchanges, which the broker on 5672 must not be given)."""
    return private_node.url


def publish(url: str, records) -> None:
    """Publish as Taskcluster's queue does: persistent JSON with the CC header."""
    with Connection(url, transport_options={"confirm_publish": True}) as conn:
        channel = conn.channel()
        for record in records:
            Exchange(record["exchange"], "topic", durable=True)(channel).declare()
            Producer(channel).publish(json.dumps(record["body"]).encode(), exchange=record["exchange"],
                                      routing_key=record["routing_key"], headers=dict(record.get("headers") or {}),
                                      content_type="application/json", content_encoding="utf-8",
                                      delivery_mode=2, retry=False)
        channel.close()


def declare_exchanges(url: str, names) -> None:
    with Connection(url) as conn:
        channel = conn.channel()
        for name in names:
            Exchange(name, "topic", durable=True)(channel).declare()
        channel.close()


def wait_for_queue(url: str, name: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """Until the example consumes queue ``name``: a consumer means the listener declared the
    queue and every binding."""
    with Connection(url) as conn:
        def consumed() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the example exited with {process.returncode}: {process.stderr.read()}")
            channel = conn.channel()
            try:
                return bool(channel.queue_declare(name, passive=True).consumer_count)
            except conn.channel_errors:
                return False  # not declared yet
            finally:
                try:
                    channel.close()
                except Exception:
                    pass

        wait_until(consumed, timeout, f"a consumer on queue {name}", interval=0.1)


class Script:
    """An example running in its own process; its stdout read line by line."""

    def __init__(self, args, env) -> None:
        self.process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def line(self, timeout: float = 60) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no output from the example") from None

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C: the listener stops after the message in hand."""
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return self.process.returncode, self.process.stderr.read()


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKCLUSTER_", "PULSE_", "TCLISTEN_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


# --------------------------------------------------------------------------- reactor.py


def test_reactor_reruns_infrastructure_failures_within_its_budget():
    reactor = load("reactor")
    with FakeTaskclusterService(scopes=SCOPES) as tc:
        SampleQueue(RECORDS).install(tc)
        decisions = reactor.Reactor()
        app = reactor.create_listener(unique("reactor"), reactor=decisions, config={"max_reruns_per_group": 1})
        with ListenerTestKit(app, taskcluster=tc) as kit:
            for record in RECORDS:
                kit.publish_message(record)
            kit.run_until_idle()
            kit.publish_message(record_of(INFRA))  # delivered again (at least once delivery)
            kit.run_until_idle()
            assert not kit.failures
            assert not kit.parked
        got = [(d.task_id, d.reason, d.action) for d in decisions.decisions]
        assert got == [(INFRA, "worker-shutdown", "rerun"), (SECOND_INFRA, "internal-error", "skip"),
                       (CANCELED, "canceled", "ignore"), (INFRA, "worker-shutdown", "skip")]
        assert "budget spent" in decisions.decisions[1].why
        assert "already moved on: run 6 is pending" in decisions.decisions[3].why
        rerun, = tc.calls_to("queue", "rerunTask")
        assert rerun.args == {"taskId": INFRA}
        assert rerun.auth == "hawk"
        assert [c.args["taskId"] for c in tc.calls_to("queue", "status")] == [INFRA, SECOND_INFRA, INFRA]


def test_reactor_skips_tasks_past_their_deadline_and_refunds_failed_reruns():
    reactor = load("reactor")
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
    with FakeTaskclusterService(scopes=SCOPES) as tc:
        SampleQueue(RECORDS).install(tc)
        late = reactor.Reactor(now=lambda: later)
        app = reactor.create_listener(unique("reactor"), reactor=late)
        with ListenerTestKit(app, taskcluster=tc) as kit:
            kit.publish_message(record_of(INFRA))
            kit.run_until_idle()
        assert late.decisions[0].action == "skip"
        assert "past its deadline" in late.decisions[0].why
        assert not tc.calls_to("queue", "rerunTask")

        tc.respond_sequence("queue", "rerunTask", [Response(429, error_body("TooManyRequests", "busy"))])
        tight = reactor.Reactor()
        app = reactor.create_listener(unique("reactor"), reactor=tight, retry={"max_attempts": 3, "delay": 1},
                                      config={"max_reruns_per_group": 1})
        with ListenerTestKit(app, taskcluster=tc) as kit:
            kit.publish_message(record_of(INFRA))
            kit.run_until_idle()
            assert [f.error.split(":")[0] for f in kit.failures] == ["tclisten.exceptions.TaskclusterRestFailure"]
            assert kit.stats.retried == 1
            assert not kit.parked
        # the refused rerun gave its budget back, so the retry could rerun the task
        assert [(d.task_id, d.action) for d in tight.decisions] == [(INFRA, "rerun")]
        assert [c.status for c in tc.calls_to("queue", "rerunTask")] == [429, 200]


def test_reactor_budget_per_hour():
    reactor = load("reactor")
    now = [0.0]
    budget = reactor.Budget(clock=lambda: now[0])
    limits = {"per_group": 10, "per_hour": 2}
    assert budget.take("A", **limits) is None
    assert budget.take("B", **limits) is None
    assert "last hour" in budget.take("C", **limits)
    now[0] = 3600.5
    assert budget.take("C", **limits) is None


def test_reactor_on_rabbitmq(vhost_url):
    reactor = load("reactor")
    with FakeTaskclusterService(scopes=SCOPES) as tc:
        SampleQueue(RECORDS).install(tc)
        decisions = reactor.Reactor()
        app = reactor.create_listener(unique("reactor"), reactor=decisions, broker_url=vhost_url,
                                      taskcluster=tc.options, concurrency=2, retry={"max_attempts": 2, "delay": 0.05})
        declare_exchanges(vhost_url, {r["exchange"] for r in RECORDS})
        app.declare()
        publish(vhost_url, RECORDS)
        run_listener(app, lambda: len(decisions.decisions) == 3)
    assert sorted(d.action for d in decisions.decisions) == ["ignore", "rerun", "rerun"]
    assert app.stats.received == 3
    assert app.stats.parked == 0


# --------------------------------------------------------------------------- group_watcher.py


def test_group_watcher_reports_every_page_of_the_group():
    watcher = load("group_watcher")
    page1 = {"taskGroupId": GROUP, "continuationToken": "next-page", "tasks": [
        {"status": {"taskId": "a", "state": "completed"}, "task": {"metadata": {"name": "build"}}},
        {"status": {"taskId": "b", "state": "failed"}, "task": {"metadata": {"name": "lint"}}}]}
    page2 = {"taskGroupId": GROUP, "tasks": [
        {"status": {"taskId": "c", "state": "exception"}, "task": {"metadata": {"name": "test-3"}}}]}
    with FakeTaskclusterService({"queue.listTaskGroup": lambda call: page2 if call.query else page1}) as tc:
        reports = watcher.GroupWatcher()
        app = watcher.create_listener(unique("watcher"), watcher=reports, scheduler_id="taskcluster-github")
        with ListenerTestKit(app, taskcluster=tc) as kit:
            for record in RECORDS:
                kit.publish_message(record)
            kit.publish(QueueEvents.taskGroupResolved, taskGroupId="OtherGroupXXXXXXXXXXXX", schedulerId="other")
            kit.run_until_idle()
            assert len(kit.outcomes) == 1  # the other scheduler's group is not bound
        report, = reports.reports
        assert str(report) == (f"task group {GROUP} resolved: 3 task(s), 1 completed, 1 exception, 1 failed; "
                               "not completed: lint (failed), test-3 (exception)")
        assert [c.query for c in tc.calls_to("queue", "listTaskGroup")] == [{}, {"continuationToken": "next-page"}]


# --------------------------------------------------------------------------- decorated.py


def test_decorated_script_on_rabbitmq(vhost_url):
    name = unique("decorated")
    declare_exchanges(vhost_url, [QueueEvents.taskCompleted.exchange, QueueEvents.taskFailed.exchange])
    script = Script(["examples/decorated.py"], clean_env(TCLISTEN_BROKER_URL=vhost_url, TCLISTEN_NAME=name))
    try:
        wait_for_queue(vhost_url, f"queue/guest/{name}", script.process)
        other = message_for("QueueEvents.taskFailed", provisionerId="another").as_record()
        publish(vhost_url, [other, record_of("fN1SbArXTPSVFNUvaOlinQ"), record_of(FAILED)])
        lines = sorted([script.line(), script.line()])
    finally:
        status, stderr = script.interrupt()
    assert status == 0, stderr
    assert lines == [f"completed fN1SbArXTPSVFNUvaOlinQ (run 0, group {GROUP}) indexed as index.project.example.latest",
                     f"failed {FAILED} on linux-ci (run 1, failed)"]
    assert script.lines.empty()  # the other provisioner's failure was not bound


# --------------------------------------------------------------------------- listener.yaml + handlers.py


EMAIL_ANSWERS = {"queue.task": {"metadata": {"name": "build-linux", "owner": "dev@example.com",
                                             "source": "https://example.com/ci.yml"}},
                 "notify.email": Response(200, {})}


def test_yaml_listener_through_the_kit():
    config = load_config(EXAMPLES / "listener.yaml", environ={"TASKCLUSTER_ROOT_URL": "https://tc.example.com"})
    app = build_listener(config)
    assert config.name == "failure-mailer"
    assert app.prefetch == 50
    assert app.concurrency == 2
    with FakeTaskclusterService(EMAIL_ANSWERS) as tc, ListenerTestKit(app, taskcluster=tc) as kit:
        for record in RECORDS:
            kit.publish_message(record)
        kit.run_until_idle()
        assert sorted(h.handler.rsplit(".", 1)[-1] for h in kit.handled) == ["mail_owner", "note_indexed_build"]
        email, = tc.calls_to("notify", "email")
        assert email.body["address"] == "dev@example.com"
        assert email.body["subject"] == "[ci] build-linux failed"
        assert f"Task {FAILED} failed in run 1 on linux-ci" in email.body["content"]


def test_yaml_listener_with_the_tclisten_command_on_rabbitmq(vhost_url):
    declare_exchanges(vhost_url, [QueueEvents.taskCompleted.exchange, QueueEvents.taskFailed.exchange])
    with FakeTaskclusterService(EMAIL_ANSWERS) as tc:
        env = clean_env(TCLISTEN_BROKER_URL=vhost_url, TASKCLUSTER_ROOT_URL=tc.root_url,
                        TASKCLUSTER_CLIENT_ID=tc.client_id, TASKCLUSTER_ACCESS_TOKEN=tc.credentials["accessToken"])
        script = Script(["-m", "tclisten", "run", "examples/listener.yaml"], env)
        try:
            wait_for_queue(vhost_url, "queue/guest/failure-mailer", script.process)
            publish(vhost_url, [record_of(FAILED)])
            wait_until(lambda: tc.calls_to("notify", "email"), 60, "the listener's notify.email call")
        finally:
            status, stderr = script.interrupt()
        assert status == 0, stderr
        email, = tc.calls_to("notify", "email")
        assert email.client_id == tc.client_id
        assert email.auth == "hawk"
        assert email.status == 200
        assert f"told dev@example.com that {FAILED} failed" in stderr
        assert tc.credentials["accessToken"] not in stderr


def test_example_doctests():
    import doctest

    for name in ("reactor", "group_watcher"):
        result = doctest.testmod(load(name))
        assert result.failed == 0
        assert result.attempted >= 1
