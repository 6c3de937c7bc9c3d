"""The users' test kit: the real loop on a private in-memory broker, a fake Taskcluster,
message factories and the pytest fixtures."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from kombu.transport import memory

from support.faultkit import wait_until
from tclisten.app import Listener
from tclisten.exceptions import BindingError, ConfigError
from tclisten.exchanges import QueueEvents
from tclisten.testing import (FactoryMessage, FakeTaskclusterService, ListenerTestKit, message_for,
                              read_records)

# the fixtures, as the installed ``pytest11`` entry point provides them (imported rather than
# listed in pytest_plugins, which would clash with the entry point once installed)
from tclisten.testing.pytest_plugin import fake_taskcluster, tclisten_kit  # noqa: E402,F401

MESSAGES = Path(__file__).resolve().parents[2] / "examples" / "messages"
GROUP = "fWxWbBvDQS2Q4XXc9U-Hnw"
OTHER = "Bf0d4GHkRDiNL3lL3DpJTw"


def listener(**options) -> Listener:
    options.setdefault("retry", {"max_attempts": 3, "delay": 0.01})
    return Listener(f"kit-{uuid.uuid4().hex[:8]}", **options)


def test_published_messages_go_through_the_real_bindings_and_loop():
    app = listener(concurrency=4)
    seen = []

    @app.on(QueueEvents.taskCompleted, taskGroupId=GROUP)
    def completed(message, ctx):
        seen.append(message)

    with ListenerTestKit(app) as kit:
        sent = kit.publish(QueueEvents.taskCompleted, taskGroupId=GROUP, routes=["index.a.b"])
        kit.publish(QueueEvents.taskCompleted, taskGroupId=OTHER)  # not bound: the broker drops it
        kit.publish(QueueEvents.taskFailed, taskGroupId=GROUP)  # another exchange: dropped too
        outcomes = kit.run_until_idle()
        assert len(outcomes) == 1
        assert outcomes[0].ok
        message = seen[0]
        assert message.routing.taskId == sent.body["status"]["taskId"]
        assert message.routing.taskGroupId == GROUP
        assert message.routing.reserved == "_"
        assert message.routes == ("index.a.b",)
        assert message.exchange == "exchange/taskcluster-queue/v1/task-completed"
        assert [h.handler for h in kit.handled] == [app.handlers[0].name]
        assert kit.handled_by(completed) == [message] == kit.handled_by(app.handlers[0].name)
        assert kit.stats.received == 1
        assert kit.pending() == 0
        assert len(kit.published) == 3
        assert not kit.failures
        assert not kit.parked
        # a second round on the same kit
        kit.publish(QueueEvents.taskCompleted, taskGroupId=GROUP)
        assert len(kit.run_until_idle()) == 1
        assert len(seen) == 2


def test_explicit_body_gets_a_real_routing_key_with_underscores():
    app = listener()
    keys = []
    app.add_handler(lambda m, ctx: keys.append((m.routing_key, m.body)), QueueEvents.taskPending,
                    taskId="T1", name="pending")
    with ListenerTestKit(app) as kit:
        kit.publish(QueueEvents.taskPending, {"anything": 1}, taskId="T1", runId=0)
        with pytest.raises(BindingError, match="taskid"):
            kit.publish(QueueEvents.taskPending, {"x": 1}, taskid="T1")
        kit.run_until_idle()
        kit.publish(QueueEvents.taskPending, {"all": 2}, taskId="T1", runId=0, provisionerId="p",
                    workerType="w", schedulerId="s", taskGroupId="G")
        kit.run_until_idle()
    key = keys[0][0].split(".")
    assert key[:3] == ["primary", "T1", "0"]
    assert key[3:5] == ["_", "_"]
    assert key[-1] == "_"
    assert keys[0][1] == {"anything": 1}
    assert keys[1] == ("primary.T1.0._._.p.w.s.G._", {"all": 2})


def test_cc_routes_and_other_exchange_prefixes():
    events = QueueEvents({"exchangePrefix": "exchange/tc-staging/v1/"})
    app = listener()
    seen = []
    app.add_handler(lambda m, ctx: seen.append(m.routes), events.taskCompleted, route="index.project.#",
                    name="indexed")
    with ListenerTestKit(app) as kit:
        kit.publish(events.taskCompleted, routes=["index.other.x"])
        kit.publish(QueueEvents.taskCompleted, routes=["index.project.x"])  # the production exchange
        kit.publish(events.taskCompleted, routes=["index.project.y", "notify.me"])
        kit.run_until_idle()
    assert seen == [("index.project.y", "notify.me")]


def test_the_kit_broker_matches_and_routes_as_rabbitmq_does():
    app = listener()
    seen = []
    app.add_handler(lambda m, ctx: seen.append(("latest", m.routes)), QueueEvents.taskCompleted,
                    route="index.*.latest", name="latest")
    app.add_handler(lambda m, ctx: seen.append(("all", m.routes)), QueueEvents.taskCompleted,
                    route="notify.#", name="all")
    app.add_handler(lambda m, ctx: seen.append(("group", m.routes)), QueueEvents.taskCompleted,
                    taskGroupId=GROUP, name="group")
    with ListenerTestKit(app) as kit:
        kit.publish(QueueEvents.taskCompleted, routes=["index.a.b.latest"])  # '*' is one word only
        kit.publish(QueueEvents.taskCompleted, routes=["notify"])  # '#' matches zero words
        kit.publish(QueueEvents.taskCompleted, taskGroupId=GROUP, routes=["index.a.latest", "notify.x"])
        outcomes = kit.run_until_idle()
    # the last message matches three bindings through three keys: one delivery, each handler once
    assert len(outcomes) == 2
    assert seen == [("all", ("notify",)), ("latest", ("index.a.latest", "notify.x")),
                    ("all", ("index.a.latest", "notify.x")), ("group", ("index.a.latest", "notify.x"))]


def test_failures_are_retried_then_parked_and_only_the_failing_handler_reruns():
    app = listener(retry={"max_attempts": 3, "delay": 5})
    calls = {"good": 0, "bad": 0}

    @app.on(QueueEvents.taskException)
    def good(message, ctx):
        calls["good"] += 1

    @app.on(QueueEvents.taskException)
    def bad(message, ctx):
        calls["bad"] += 1
        raise RuntimeError(f"cannot handle attempt {message.attempt}")

    with ListenerTestKit(app) as kit:
        sent = kit.publish("QueueEvents.taskException", reasonResolved="internal-error")
        outcomes = kit.run_until_idle()
        assert [o.message.attempt for o in outcomes] == [1, 2, 3]
        assert calls == {"good": 1, "bad": 3}
        assert [f.error for f in kit.failures] == [f"RuntimeError: cannot handle attempt {n}" for n in (1, 2, 3)]
        (parked,) = kit.parked
        assert parked.attempts == 3
        assert parked.handlers == (app.handlers[1].name,)
        assert parked.routing_key == sent.routing_key
        assert parked.body == sent.body
        assert "attempt 3" in parked.reason
        assert kit.stats.retried == 2
        assert kit.stats.parked == 1
        assert kit.parked == [parked]  # read once, kept


def test_rest_calls_reach_the_fake_taskcluster_with_hawk_and_options_come_back():
    app = listener(taskcluster={"rootUrl": "https://tc.example.com"})
    names = []

    @app.on(QueueEvents.taskFailed)
    def lookup(message, ctx):
        names.append(ctx.queue.task(message.routing.taskId)["metadata"]["name"])

    with FakeTaskclusterService({"queue.task": lambda call: {"metadata": {"name": call.args["taskId"]}}},
                                scopes=["queue:get-task:*"]) as tc:
        with ListenerTestKit(app, taskcluster=tc) as kit:
            sent = kit.publish(QueueEvents.taskFailed)
            kit.run_until_idle()
        call, = tc.calls_to("queue", "task")
        assert call.auth == "hawk"
        assert call.client_id == "tclisten-test"
        assert call.status == 200
        assert names == [sent.body["status"]["taskId"]]
        assert tc.credentials["accessToken"] not in repr(tc) + repr(kit)
    assert app.handlers[0].context.queue.buildUrl("task", "x") == "https://tc.example.com/api/queue/v1/task/x"


def test_each_kit_has_its_own_broker():
    name = f"kit-shared-{uuid.uuid4().hex[:6]}"
    first, second = Listener(name), Listener(name)
    seen = {1: [], 2: []}
    first.add_handler(lambda m, ctx: seen[1].append(m), QueueEvents.taskCompleted, name="h")
    second.add_handler(lambda m, ctx: seen[2].append(m), QueueEvents.taskCompleted, name="h")
    with ListenerTestKit(first) as kit1, ListenerTestKit(second) as kit2:
        kit1.publish(QueueEvents.taskCompleted)
        kit2.run_until_idle()
        kit1.run_until_idle()
    assert (len(seen[1]), len(seen[2])) == (1, 0)
    assert first.queue_name not in memory.Channel.queues  # process-wide memory:// untouched


def test_sample_records_and_factories():
    app = listener()
    app.add_handler(lambda m, ctx: None, QueueEvents.taskException, name="exceptions")
    with ListenerTestKit(app) as kit:
        for record in read_records(MESSAGES / "all.jsonl"):
            kit.publish_message(record)
        kit.publish_message(message_for("QueueEvents.taskException"))
        outcomes = kit.run_until_idle()
    reasons = [o.message.body["status"]["runs"][-1]["reasonResolved"] for o in outcomes]
    assert reasons == ["worker-shutdown", "internal-error", "canceled", "deadline-exceeded"]
    assert isinstance(kit.published[-1], FactoryMessage)
    assert len(read_records(MESSAGES / "task-failed.json")) == 1


def test_misuse_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no handlers"):
        ListenerTestKit(listener())
    with pytest.raises(ConfigError, match="service.function"):
        FakeTaskclusterService({"task": {}})
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"exchange": "x"}\n')
    with pytest.raises(ConfigError, match="routing_key"):
        read_records(bad)
    app = listener()
    app.add_handler(lambda m, ctx: None, QueueEvents.taskCompleted, name="h")
    with ListenerTestKit(app) as kit:
        with pytest.raises(BindingError, match="QueueEvents.taskCompletd"):
            kit.publish("QueueEvents.taskCompletd")
        with pytest.raises(BindingError, match="expected <Service>Events"):
            kit.publish("taskCompleted")
        with pytest.raises(ConfigError, match="not a handler"):
            kit.handled_by(print)


def test_fixtures(tclisten_kit, fake_taskcluster):
    fake_taskcluster.respond("queue", "rerunTask", {"status": {"state": "pending"}})
    app = listener()

    @app.on(QueueEvents.taskException)
    def rerun(message, ctx):
        ctx.queue.rerunTask(message.routing.taskId)

    kit = tclisten_kit(app)
    sent = kit.publish(QueueEvents.taskException, reasonResolved="internal-error")
    kit.run_until_idle()
    call, = fake_taskcluster.calls_to("queue", "rerunTask")
    assert call.args == {"taskId": sent.body["status"]["taskId"]}
    assert call.status == 200
    assert fake_taskcluster.options["rootUrl"] == fake_taskcluster.root_url


def test_doctests():
    import doctest

    from tclisten import testing
    from tclisten.testing import kit, pytest_plugin

    for module in (testing, kit, pytest_plugin):
        result = doctest.testmod(module)
        assert result.failed == 0
    assert doctest.testmod(kit).attempted >= 3


USER_TEST = '''
from tclisten import Listener, QueueEvents

app = Listener("users-reactor")


@app.on(QueueEvents.taskException)
def rerun(message, ctx):
    ctx.queue.rerunTask(message.routing.taskId)


def test_rerun(tclisten_kit, fake_taskcluster):
    fake_taskcluster.respond("queue", "rerunTask", {"status": {"state": "pending"}})
    kit = tclisten_kit(app)
    sent = kit.publish(QueueEvents.taskException, reasonResolved="internal-error")
    kit.run_until_idle()
    assert [c.args["taskId"] for c in fake_taskcluster.calls] == [sent.body["status"]["taskId"]]
'''


def test_the_plugin_as_pytest_loads_it(tmp_path):
    """What a user's suite sees once the ``pytest11`` entry point is installed (-p here)."""
    import os
    import subprocess
    import sys

    (tmp_path / "test_users.py").write_text(USER_TEST)
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    from importlib.metadata import entry_points

    installed = any(ep.value == "tclisten.testing.pytest_plugin" for ep in entry_points(group="pytest11"))
    load = [] if installed else ["-p", "tclisten.testing.pytest_plugin"]  # -p twice is a pytest error
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *load,
                           "test_users.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_listener_runs_again_after_stop():
    """Not the kit: Listener.run() itself on memory://, twice."""
    import threading

    from kombu import Connection, Producer

    app = Listener(f"kit-rerun-{uuid.uuid4().hex[:6]}", broker_url="memory://localhost/", declare_exchanges=True)
    seen = []
    app.add_handler(lambda m, ctx: seen.append(m), QueueEvents.taskFailed, name="h")
    try:
        for round_ in range(2):
            app.declare()
            sent = message_for("QueueEvents.taskFailed")
            with Connection("memory://localhost/") as conn:
                Producer(conn.default_channel).publish(sent.body, exchange=sent.exchange,
                                                       routing_key=sent.routing_key, serializer="json")
            thread = threading.Thread(target=app.run)
            thread.start()
            wait_until(lambda: len(seen) > round_ or not thread.is_alive(), 10,
                       f"round {round_ + 1}'s message to reach the handler", interval=0.01)
            app.stop()
            thread.join(30)
        assert len(seen) == 2
    finally:
        with Connection("memory://localhost/") as conn:
            conn.default_channel.queue_delete(app.queue_name)
