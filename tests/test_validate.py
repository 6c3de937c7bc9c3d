"""validate=True: bodies checked against the exchanges' bundled JSON schemas before a handler
runs, per listener, per handler and in YAML; an invalid body parks with the schema error."""

from __future__ import annotations

import json
import logging

import pytest

from support.blocked import run_without
from support.env import REALWORLD
from tclisten.app import Listener
from tclisten.config import build_listener, load_config
from tclisten.dispatch import Binding, Dispatcher, Handler
from tclisten.exceptions import BindingError, ConfigError
from tclisten.policy import ParkNow, decide
from tclisten.taskcluster.schemas import body_check, bundled_path
from tclisten.testing.factories import factory_names, message_for
from tclisten.topics import resolve

pytest.importorskip("fastjsonschema")


def _app(**options) -> Listener:
    return Listener("validating", broker_url="amqp://guest:guest@127.0.0.1:5672//", **options)


def _broken_completed() -> tuple[str, str, dict]:
    m = message_for("QueueEvents.taskCompleted")
    body = dict(m.body, runId="first")
    return m.exchange, m.routing_key, body


def test_a_listener_that_validates_parks_an_invalid_body_without_calling_the_handler():
    app = _app(validate=True)
    calls = []
    app.on("QueueEvents.taskCompleted")(lambda message, ctx: calls.append(message.body["runId"]))
    good = message_for("QueueEvents.taskCompleted")
    assert app.dispatch(good.exchange, good.routing_key, json.dumps(good.body)).ok
    outcome = app.dispatch(*_broken_completed()[:2], json.dumps(_broken_completed()[2]))
    assert calls == [good.body["runId"]]
    (failure,) = outcome.failed
    assert failure.park
    assert failure.record.type == "InvalidBody"
    assert failure.error == ("tclisten.exceptions.InvalidBody: body does not match "
                             "queue/v1/task-completed-message.json: body.runId must be integer")
    assert isinstance(decide(outcome.facts(), app.retry), ParkNow)


def test_the_handler_setting_overrides_the_listener_both_ways():
    app = _app()
    seen = []

    @app.on("QueueEvents.taskCompleted", validate=True)
    def strict(message, ctx):
        seen.append("strict")

    @app.on("QueueEvents.taskCompleted")
    def lenient(message, ctx):
        seen.append("lenient")

    outcome = app.dispatch(*_broken_completed())
    assert seen == ["lenient"]
    assert [f.handler for f in outcome.failed] == [app.handlers[0].name]
    assert app.handlers[0].name.endswith(".strict")
    opted_out = _app(validate=True)
    opted_out.on("QueueEvents.taskCompleted", validate=False)(lambda m, c: seen.append("opted out"))
    assert opted_out.dispatch(*_broken_completed()).ok
    assert seen[-1] == "opted out"


def test_the_body_is_checked_once_for_every_handler_of_the_message():
    good = message_for("QueueEvents.taskCompleted")
    check = body_check(bundled_path("queue", "v1/task-completed-message.json#"))
    checked = []
    dispatcher = Dispatcher([Handler(name, lambda m, c: None) for name in "abc"],
                            [Binding(good.exchange, "#", name) for name in "abc"],
                            checks={good.exchange: lambda body: checked.append(1) or check(body)},
                            validating=("a", "b", "c"))
    assert dispatcher.dispatch(good.exchange, good.routing_key, good.body).handled == ("a", "b", "c")
    assert checked == [1]


def test_an_exchange_without_a_schema_is_refused_at_on_and_left_unchecked_by_the_listener(caplog):
    app = _app()
    with pytest.raises(BindingError, match="validate=True: exchange/hgpushes/v2 has no bundled JSON schema"):
        app.on("exchange/hgpushes/v2", routing_key="#", validate=True)
    with pytest.raises(BindingError, match="taskcluster-scheduler.*no bundled JSON schema"):
        app.on("SchedulerEvents.taskGraphRunning", validate=True)  # 2015: schemas never bundled
    lenient = _app(validate=True)
    lenient.on("exchange/hgpushes/v2", routing_key="#")(lambda m, c: None)
    with caplog.at_level(logging.WARNING, logger="tclisten.app"):
        assert lenient.dispatch("exchange/hgpushes/v2", "mozilla-central", b'{"any": "thing"}').ok
    assert "exchange/hgpushes/v2 has no bundled JSON schema; its bodies are not checked" in caplog.text


def test_validate_must_be_a_boolean():
    with pytest.raises(ConfigError, match="validate"):
        _app().on("QueueEvents.taskCompleted", validate="yes")


@pytest.mark.parametrize("name", factory_names())
def test_every_factory_message_passes_its_bundled_schema(name):
    topic = resolve(name)
    path = bundled_path(topic.reference.service_name, topic.schema)
    if path is None:
        pytest.skip(f"{name}: no bundled schema (2015 service)")
    message = message_for(name)
    assert body_check(path)(message.body) is None


def test_real_pulse_messages_pass_once_given_the_fields_the_queue_added_since(tmp_path):
    source = REALWORLD / "pulse_messages.json"
    if not source.is_file():
        pytest.skip(f"{source} is not here (the shared real-world material)")
    checked = 0
    for real in json.loads(source.read_text(encoding="utf-8"))["messages"]:
        topic = resolve(real["exchange"])
        path = bundled_path(topic.reference.service_name, topic.schema) if hasattr(topic, "reference") else None
        if path is None or not real.get("body_complete") or not isinstance(real.get("body"), dict):
            continue
        body = real["body"]
        error = body_check(path)(body)
        if error is not None:  # 2019 messages: the queue added projectId and taskQueueId since
            assert error.endswith("body.status must contain ['projectId', 'taskQueueId'] properties"), error
            status = body["status"]
            body = dict(body, status=dict(status, projectId="none",
                                          taskQueueId=f"{status['provisionerId']}/{status['workerType']}"))
            assert body_check(path)(body) is None, real["id"]
        checked += 1
    assert checked >= 90


def test_yaml_validates_per_listener_and_per_binding(tmp_path):
    (tmp_path / "handlers.py").write_text("def seen(message, ctx):\n    pass\n")
    (tmp_path / "listener.yaml").write_text(
        "name: checked\nbroker_url: amqp://guest:guest@127.0.0.1:5672//\n"
        "bindings:\n"
        "  - exchange: QueueEvents.taskCompleted\n    handler: handlers.py:seen\n    name: strict\n"
        "    validate: true\n"
        "  - exchange: QueueEvents.taskCompleted\n    handler: handlers.py:seen\n    name: lenient\n")
    app = build_listener(load_config(tmp_path / "listener.yaml", environ={}))
    outcome = app.dispatch(*_broken_completed())
    assert [f.handler for f in outcome.failed] == ["strict"]
    assert outcome.handled == ("lenient",)
    (tmp_path / "bad.yaml").write_text((tmp_path / "listener.yaml").read_text().replace(
        "validate: true", "validate: often"))
    with pytest.raises(ConfigError, match=r"bad.yaml:7: bindings\[0\].validate: expected"):
        load_config(tmp_path / "bad.yaml", environ={})


def test_without_fastjsonschema_validate_true_says_what_to_install():
    out = run_without({"fastjsonschema"}, """
from tclisten.app import Listener
from tclisten.exceptions import ConfigError
app = Listener("x", broker_url="amqp://guest:guest@127.0.0.1:5672//")
app.on("QueueEvents.taskCompleted")(lambda m, c: None)
from tclisten.testing.factories import message_for
m = message_for("QueueEvents.taskCompleted")
print(app.dispatch(m.exchange, m.routing_key, {}).ok)
for attempt in (lambda: Listener("y", validate=True),
                lambda: app.on("QueueEvents.taskFailed", validate=True),
                lambda: app.configure(validate=True)):
    try:
        attempt()
    except ConfigError as exc:
        print(exc)
""")
    lines = out.strip().splitlines()
    assert lines[0] == "True"
    assert lines[1:] == ["validate=True needs fastjsonschema: pip install 'tclisten[validate]'"] * 3
