"""tclisten.otel: real handlers on the test kit, real REST calls to the loopback Taskcluster,
spans collected by the SDK's in-memory exporter from a provider of the test's own."""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tclisten.app import Listener
from tclisten.exceptions import TaskclusterConnectionError, TaskclusterRestFailure
from tclisten.exchanges import QueueEvents
from tclisten.taskcluster import client
from tclisten.taskcluster.client import Queue
from tclisten.testing.factories import message_for

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
trace = pytest.importorskip("opentelemetry.trace")
in_memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
export = pytest.importorskip("opentelemetry.sdk.trace.export")
otel = importlib.import_module("tclisten.otel")  # once OpenTelemetry is known to be here
SpanKind, StatusCode = trace.SpanKind, trace.StatusCode

# ``tclisten_kit`` and ``fake_taskcluster`` come from the installed ``pytest11`` entry point

TASK_ID = "fN1SbArXTPSVFNUvaOlinQ"


@dataclass
class Traced:
    provider: Any
    exporter: Any

    def spans(self, kind=None) -> list:
        return [span for span in self.exporter.get_finished_spans() if kind is None or span.kind is kind]


@pytest.fixture
def traced():
    """A tracer provider of the test's own (the global one is never set) and its spans."""
    exporter = in_memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    yield Traced(provider, exporter)
    otel.uninstrument()
    provider.shutdown()
    assert client.call_observers == ()


def listener(**options) -> Listener:
    options.setdefault("retry", {"max_attempts": 1})
    return Listener(f"otel-{uuid.uuid4().hex[:8]}", **options)


def test_a_handler_call_is_a_consumer_span_with_the_message_attributes(traced, tclisten_kit):
    app = listener()

    @app.on(QueueEvents.taskFailed)
    def failed(message, ctx):
        assert trace.get_current_span().get_span_context().is_valid  # current while the handler runs

    otel.instrument(app, tracer_provider=traced.provider)
    kit = tclisten_kit(app)
    sent = kit.publish(QueueEvents.taskFailed, taskId=TASK_ID)
    kit.run_until_idle()
    assert not kit.failures
    [span] = traced.spans()
    handler = app.handlers[0].name
    assert span.name == f"tclisten handler {handler}"
    assert span.kind is SpanKind.CONSUMER
    assert span.parent is None
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes) == {
        "messaging.system": "rabbitmq", "messaging.operation.type": "process",
        "messaging.destination.name": "exchange/taskcluster-queue/v1/task-failed",
        "messaging.rabbitmq.destination.routing_key": sent.routing_key,
        "tclisten.listener": app.name, "tclisten.handler": handler, "tclisten.attempt": 1,
        "taskcluster.task_id": TASK_ID}
    assert not trace.get_current_span().get_span_context().is_valid  # detached again


def test_a_raw_exchange_has_no_task_id(traced, tclisten_kit):
    app = listener()
    app.add_handler(lambda message, ctx: None, "exchange/some-service/v1/thing", routing_key="#", name="raw")
    otel.instrument(app, tracer_provider=traced.provider)
    kit = tclisten_kit(app)
    kit.publish_message({"exchange": "exchange/some-service/v1/thing", "routing_key": "a.b", "body": {}})
    kit.run_until_idle()
    [span] = traced.spans()
    assert span.attributes["messaging.rabbitmq.destination.routing_key"] == "a.b"
    assert "taskcluster.task_id" not in span.attributes


def test_a_rest_call_of_a_handler_is_a_client_span_under_the_handler_span(traced, tclisten_kit,
                                                                           fake_taskcluster):
    fake_taskcluster.respond("queue", "task", {"metadata": {"name": "build"}})
    app = listener()

    @app.on(QueueEvents.taskFailed)
    def lookup(message, ctx):
        ctx.queue.task(message.routing.taskId)

    otel.instrument(app, tracer_provider=traced.provider)
    kit = tclisten_kit(app)
    kit.publish(QueueEvents.taskFailed, taskId=TASK_ID)
    kit.run_until_idle()
    assert not kit.failures
    [handler] = traced.spans(SpanKind.CONSUMER)
    [rest] = traced.spans(SpanKind.CLIENT)
    assert rest.name == "Queue task"
    assert rest.parent.span_id == handler.context.span_id
    assert rest.context.trace_id == handler.context.trace_id
    assert rest.status.status_code is StatusCode.UNSET
    assert rest.attributes["http.request.method"] == "GET"
    assert rest.attributes["url.full"] == f"{fake_taskcluster.root_url}/api/queue/v1/task/{TASK_ID}"
    assert rest.attributes["http.response.status_code"] == 200
    assert rest.attributes["tclisten.rest.attempts"] == 1
    assert rest.attributes["server.address"] == "127.0.0.1"
    assert rest.attributes["taskcluster.service"] == "queue"
    assert rest.attributes["taskcluster.function"] == "task"


def test_a_retried_rest_call_counts_its_attempts(traced, fake_taskcluster, monkeypatch):
    monkeypatch.setattr(client, "_sleep", lambda seconds: None)
    fake_taskcluster.respond("queue", "status", {"status": {"state": "failed"}})
    fake_taskcluster.fail_next(2, 503)
    otel.instrument(listener(), tracer_provider=traced.provider)
    Queue(fake_taskcluster.options).status(TASK_ID)
    [rest] = traced.spans()  # outside handlers: the latest instrumented listener's tracer
    assert rest.parent is None
    assert rest.attributes["tclisten.rest.attempts"] == 3
    assert rest.attributes["http.response.status_code"] == 200
    assert rest.status.status_code is StatusCode.UNSET


def test_a_rest_call_without_an_answer_counts_every_attempt(traced, fake_taskcluster, monkeypatch):
    monkeypatch.setattr(client, "_sleep", lambda seconds: None)
    fake_taskcluster.drop_next(2)
    otel.instrument(listener(), tracer_provider=traced.provider)
    with pytest.raises(TaskclusterConnectionError):
        Queue({**fake_taskcluster.options, "maxRetries": 1}).task(TASK_ID)
    [rest] = traced.spans()
    assert rest.attributes["tclisten.rest.attempts"] == 2
    assert "http.response.status_code" not in rest.attributes
    assert rest.attributes["error.type"] == "tclisten.exceptions.TaskclusterConnectionError"
    assert rest.status.status_code is StatusCode.ERROR


def test_a_failing_handler_span_has_error_status_and_the_exception(traced, tclisten_kit):
    app = listener(retry={"max_attempts": 2, "delay": 0.01})

    @app.on(QueueEvents.taskFailed)
    def broken(message, ctx):
        raise RuntimeError("no luck")

    otel.instrument(app, tracer_provider=traced.provider)
    kit = tclisten_kit(app)
    kit.publish(QueueEvents.taskFailed, taskId=TASK_ID)
    kit.run_until_idle()
    spans = traced.spans()
    assert [span.attributes["tclisten.attempt"] for span in spans] == [1, 2]
    for span in spans:
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "RuntimeError: no luck"
        assert span.attributes["error.type"] == "builtins.RuntimeError"
        [event] = span.events
        assert event.name == "exception"
        assert event.attributes["exception.type"] == "RuntimeError"
        assert event.attributes["exception.message"] == "no luck"
    assert not trace.get_current_span().get_span_context().is_valid


def test_a_failing_rest_call_records_its_status(traced, tclisten_kit, fake_taskcluster):
    app = listener()

    @app.on(QueueEvents.taskFailed)
    def lookup(message, ctx):
        ctx.queue.task(message.routing.taskId)  # nothing answers queue.task: 404

    otel.instrument(app, tracer_provider=traced.provider)
    kit = tclisten_kit(app)
    kit.publish(QueueEvents.taskFailed, taskId=TASK_ID)
    kit.run_until_idle()
    assert [f.handler for f in kit.failures] == [app.handlers[0].name]
    [handler] = traced.spans(SpanKind.CONSUMER)
    [rest] = traced.spans(SpanKind.CLIENT)
    assert rest.parent.span_id == handler.context.span_id
    assert rest.attributes["http.response.status_code"] == 404
    assert rest.attributes["error.type"] == "404"
    assert rest.attributes["tclisten.rest.attempts"] == 1
    assert rest.status.status_code is StatusCode.ERROR
    assert rest.events[0].attributes["exception.type"].endswith("TaskclusterRestFailure")
    assert handler.status.status_code is StatusCode.ERROR


def test_no_credential_reaches_an_attribute(traced, fake_taskcluster):
    otel.instrument(listener(), tracer_provider=traced.provider)
    token = fake_taskcluster.credentials["accessToken"]
    queue = Queue(fake_taskcluster.options)
    signed = queue.buildSignedUrl("task", TASK_ID)
    secret_root = fake_taskcluster.root_url.replace("http://", "http://someone:s3cret-pw@")
    with pytest.raises(TaskclusterRestFailure):
        queue.task(TASK_ID)
    with pytest.raises(TaskclusterRestFailure):
        Queue({**fake_taskcluster.options, "rootUrl": secret_root}).task(TASK_ID)
    spans = traced.spans()
    assert len(spans) == 2
    texts = [str(value) for span in spans for attributes in (span.attributes, *(e.attributes for e in span.events))
             for value in attributes.values()]
    bewit = signed.split("bewit=", 1)[1]
    for secret in (token, "s3cret-pw", bewit, "Hawk id=", "bewit"):
        assert not [text for text in texts if secret in text], secret
    assert spans[1].attributes["url.full"].startswith("http://someone:****@127.0.0.1")


def test_without_instrument_there_are_no_spans(traced, tclisten_kit, fake_taskcluster):
    fake_taskcluster.respond("queue", "task", {})
    app = listener()

    @app.on(QueueEvents.taskFailed)
    def lookup(message, ctx):
        ctx.queue.task(message.routing.taskId)

    kit = tclisten_kit(app)
    kit.publish(QueueEvents.taskFailed, taskId=TASK_ID)
    kit.run_until_idle()
    assert len(kit.handled) == 1
    assert traced.spans() == []
    assert client.call_observers == ()


def test_uninstrument_stops_the_spans(traced, tclisten_kit):
    app = listener()
    app.add_handler(lambda message, ctx: None, QueueEvents.taskFailed, name="quiet")
    tracing = otel.instrument(app, tracer_provider=traced.provider)
    tracing.uninstrument()
    assert not tracing.active
    assert client.call_observers == ()
    kit = tclisten_kit(app)
    kit.publish(QueueEvents.taskFailed)
    kit.run_until_idle()
    assert len(kit.handled) == 1
    assert traced.spans() == []


def test_instrument_is_idempotent(traced):
    app = listener()
    app.add_handler(lambda message, ctx: None, QueueEvents.taskFailed, name="h")
    first = otel.instrument(app, tracer_provider=traced.provider)
    assert otel.instrument(app, tracer_provider=traced.provider) is first
    assert otel.instrument(listener()) is not first
    assert len(client.call_observers) == 1
    made = message_for("QueueEvents.taskFailed")
    assert app.dispatch(made.exchange, made.routing_key, made.body).ok
    assert len(traced.spans()) == 1


def test_nested_handler_calls_nest_their_spans(traced):
    inner, outer = listener(), listener()
    inner.add_handler(lambda message, ctx: None, QueueEvents.taskFailed, name="inner")
    outer.add_handler(lambda message, ctx: inner.dispatch(message.exchange, message.routing_key, message.body),
                      QueueEvents.taskFailed, name="outer")
    otel.instrument(inner, tracer_provider=traced.provider)
    otel.instrument(outer, tracer_provider=traced.provider)
    made = message_for("QueueEvents.taskFailed", taskId=TASK_ID)
    assert outer.dispatch(made.exchange, made.routing_key, made.body).ok
    spans = {span.attributes["tclisten.handler"]: span for span in traced.spans()}
    assert spans["inner"].parent.span_id == spans["outer"].context.span_id
    assert not trace.get_current_span().get_span_context().is_valid


def test_client_call_observers_are_empty_by_default():
    code = "import tclisten.taskcluster.client as c; print(repr(c.call_observers))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "()"


def test_tclisten_never_imports_opentelemetry():
    code = ("import sys, tclisten, tclisten.app, tclisten.taskcluster.client, tclisten.testing.kit; "
            "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_without_opentelemetry_the_import_error_says_what_to_install():
    code = ("import sys; sys.modules['opentelemetry'] = None\n"
            "try:\n    import tclisten.otel\nexcept ImportError as exc:\n    print(exc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    [line] = out.strip().splitlines()
    assert "pip install 'tclisten[otel]'" in line
