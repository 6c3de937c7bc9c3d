"""The operator's commands through the real ``tclisten`` command, on the broker on 5672:
parked list/requeue/drop, bindings --diff, delete (with its question), migrate, publish, and
what each says when the broker is not there."""

from __future__ import annotations

import importlib.util
import json
import os
import pty
import subprocess
import sys
import time
import uuid

import pytest
from clikit import clean_env, message_count, publish, tclisten
from kombu import Connection, Exchange, Queue

from tclisten.config import build_listener, load_config
from tclisten.headers import FailureRecord, Provenance, encode
from tclisten.testing.factories import message_for

TRACEBACK = "Traceback (most recent call last):\n" + "".join(
    f'  File "handlers.py", line {n}, in on_failing\n    step_{n}()\n' for n in range(1, 15)) + "RuntimeError: boom"


def with_tty(*argv: str, answer: str, cwd) -> subprocess.CompletedProcess:
    """Run the command with a terminal on stdin that types ``answer``."""
    leader, follower = pty.openpty()
    try:
        os.write(leader, answer.encode() + b"\n")
        return subprocess.run([sys.executable, "-m", "tclisten", *argv], cwd=cwd, env=clean_env(), stdin=follower,
                              capture_output=True, text=True, timeout=60)
    finally:
        os.close(leader)
        os.close(follower)


def park(broker_url: str, app, body, headers) -> None:
    """Put a message into the listener's parked queue as the loop would."""
    publish(broker_url, app.topology.exchange.name, "parked", body, headers)


@pytest.fixture
def parked_listener(listeners, broker_url):
    """A listener with four parked messages: a task's failure, a body nested too deep to
    decode, a body that is not JSON, and headers that cannot be read."""
    path = listeners.raw("handlers.py:on_failing")
    app = build_listener(load_config(path))
    assert tclisten("parked", "list", str(path), cwd=listeners.folder).returncode == 0  # declares its queues
    task = message_for("QueueEvents.taskFailed", taskId="fN1SbArXTPSVFNUvaOlinQ")
    failure = FailureRecord("handlers.on_failing", "RuntimeError", "boom", TRACEBACK, at=1_700_000_000.5)
    park(broker_url, app, json.dumps(task.body), encode({}, Provenance(
        task.exchange, task.routing_key, attempt=3, handlers=("handlers.on_failing",), reason="RuntimeError: boom",
        failures=(failure,), parked_at=1_700_000_001)))
    park(broker_url, app, "[" * 100_000, encode({}, Provenance("exchange/guest/x", "deep", reason="body is not JSON")))
    park(broker_url, app, b"\xff\xfe not json", encode({}, Provenance("exchange/guest/x", "binary")))
    park(broker_url, app, "{}", {"x-tclisten-exchange": "exchange/guest/x", "x-tclisten-attempt": "many"})
    return path, app


def test_parked_list_shows_each_message_and_never_crashes(parked_listener, listeners):
    path, app = parked_listener
    done = tclisten("parked", "list", str(path), cwd=listeners.folder)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"#1 exchange/taskcluster-queue/v1/task-failed primary.fN1SbArXTPSVFNUvaOlinQ.")
    assert "  task: fN1SbArXTPSVFNUvaOlinQ\n" in out
    assert "  parked: 2023-11-14T22:13:21Z after 3 attempt(s); handlers: handlers.on_failing\n" in out
    assert "  reason: RuntimeError: boom\n" in out
    assert "  last failure: handlers.on_failing RuntimeError at 2023-11-14T22:13:20Z: boom\n" in out
    assert "    RuntimeError: boom\n" in out
    assert "lines more with --json" in out  # the end of the traceback
    assert "#2 exchange/guest/x deep" in out
    assert "  body (not JSON, shown raw): [[[[" in out
    assert "(100000 characters)" in out
    assert "#3 exchange/guest/x binary" in out
    assert "not json" in out
    assert "#4 " in out
    assert "unreadable x-tclisten-* headers" in out
    assert "4 parked message(s) in " in done.stderr

    done = tclisten("parked", "list", str(path), "--json", cwd=listeners.folder)
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["position"] for r in records] == [1, 2, 3, 4]
    assert records[0]["task_id"] == "fN1SbArXTPSVFNUvaOlinQ"
    assert records[0]["failures"][0]["traceback"] == TRACEBACK
    assert records[1]["raw_body"]
    assert records[1]["body"] == "[" * 100_000
    done = tclisten("parked", "list", str(path), "--task-id", "fN1SbArXTPSVFNUvaOlinQ", "--json",
                    cwd=listeners.folder)
    assert len(done.stdout.splitlines()) == 1
    assert "1 parked message(s) matching" in done.stderr
    done = tclisten("parked", "list", str(path), "--reason", "not JSON", "--limit", "1", cwd=listeners.folder)
    assert done.stdout.startswith("#2 ")
    assert message_count(listeners.broker_url, app.topology.parked_name) == 4  # listing took none away


def test_parked_requeue_and_drop(parked_listener, listeners):
    path, app = parked_listener
    folder = listeners.folder
    done = tclisten("parked", "requeue", str(path), cwd=folder)
    assert done.returncode == 2
    assert "say which messages: --all, or --position" in done.stderr
    done = tclisten("parked", "requeue", str(path), "--task-id", "fN1SbArXTPSVFNUvaOlinQ", cwd=folder)
    assert done.returncode == 0
    assert done.stdout.startswith("requeued 1 parked message(s) into ")
    assert message_count(listeners.broker_url, app.queue_name) == 1
    done = tclisten("parked", "drop", str(path), "--position", "1", cwd=folder)  # no terminal, no --yes
    assert done.returncode == 2
    assert "pass --yes" in done.stderr
    done = with_tty("parked", "drop", str(path), "--all", answer="n", cwd=folder)
    assert done.returncode == 1
    assert "drop 3 parked message(s) of " in done.stderr
    assert "nothing dropped" in done.stderr
    done = tclisten("parked", "drop", str(path), "--position", "1", "--yes", cwd=folder)
    assert done.returncode == 0
    assert done.stdout.startswith("dropped 1 parked message(s)")
    done = with_tty("parked", "drop", str(path), "--all", answer="y", cwd=folder)
    assert done.returncode == 0
    assert done.stdout.startswith("dropped 2 parked message(s)")
    assert message_count(listeners.broker_url, app.topology.parked_name) == 0


def test_bindings_diff_reads_the_record_without_taking_it(listeners, broker_url):
    exchange = listeners.exchange()
    name = f"cli-diff-{uuid.uuid4().hex[:8]}"
    before = listeners.write(f"""\
      - {{exchange: {exchange}, routing_key: "old.#", handler: handlers.py:on_push}}
      - {{exchange: {exchange}, routing_key: "kept.#", handler: handlers.py:on_push}}
    """, name=name)
    done = tclisten("bindings", "--diff", str(before), cwd=listeners.folder)
    assert done.returncode == 0, done.stderr
    assert "no bindings recorded yet" in done.stdout
    assert f"+ {exchange}  old.#" in done.stdout
    app = build_listener(load_config(before))
    app.declare()  # a start: queues, bindings, and the record of them
    after = listeners.write(f"""\
      - {{exchange: {exchange}, routing_key: "kept.#", handler: handlers.py:on_push}}
      - {{exchange: {exchange}, routing_key: "new.#", handler: handlers.py:on_push}}
    """, name=name)
    done = tclisten("bindings", "--diff", str(after), cwd=listeners.folder)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"queue: {app.queue_name}"
    assert sorted(line.split()[:3] for line in lines[1:]) == [
        ["+", exchange, "new.#"], ["-", exchange, "old.#"], [exchange, "kept.#", "handlers.on_push"]]
    assert "adds 1 and removes 1 binding(s)" in done.stderr
    assert message_count(broker_url, app.topology.bindings_name) == 1  # the record is still there


def test_delete_asks_first(listeners, broker_url):
    path = listeners.raw()
    app = build_listener(load_config(path))
    app.declare()
    folder = listeners.folder
    done = tclisten("delete", str(path), cwd=folder)
    assert done.returncode == 2
    assert "stdin is not a terminal, pass --yes" in done.stderr
    done = with_tty("delete", str(path), answer="no", cwd=folder)
    assert done.returncode == 1
    assert "nothing deleted" in done.stderr
    assert f"delete {len(app.queue_names())} queues and exchange {app.topology.exchange.name}? [y/N]" in done.stderr
    assert message_count(broker_url, app.queue_name) == 0  # still there
    done = with_tty("delete", str(path), answer="y", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert f"deleted queue {app.queue_name}\n" in done.stdout
    assert done.stdout.strip().endswith(f"deleted exchange {app.topology.exchange.name}")
    with Connection(broker_url) as conn:
        for queue in app.queue_names():
            with pytest.raises(conn.channel_errors), conn.channel() as channel:
                channel.queue_declare(queue, passive=True)


def test_publish_a_body_to_any_exchange(listeners, broker_url, tmp_path):
    exchange = listeners.exchange()
    body = tmp_path / "push.json"
    body.write_text(json.dumps({"pushid": 7}))
    with Connection(broker_url) as conn, conn.channel() as channel:
        queue = Queue(f"queue/guest/tclisten-test-{uuid.uuid4().hex[:8]}", Exchange(exchange, "topic"),
                      routing_key="#", exclusive=True)(channel)
        queue.declare()
        done = tclisten("publish", exchange, "--file", str(body), "--routing-key", "mozilla-central.7",
                        "--route", "index.a", "index.b", "--count", "2", "--broker-url", broker_url)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["mozilla-central.7"] * 2
        got = [queue.get(no_ack=True) for _ in range(2)]
    assert [json.loads(m.body) for m in got] == [{"pushid": 7}] * 2
    assert got[0].headers["CC"] == ["route.index.a", "route.index.b"]
    assert got[0].delivery_info["routing_key"] == "mozilla-central.7"


def test_publish_mistakes(broker_url, tmp_path):
    missing = f"exchange/guest/tclisten-test-none-{uuid.uuid4().hex[:8]}"
    body = tmp_path / "b.json"
    body.write_text("{}")
    done = tclisten("publish", missing, "--file", str(body), "--routing-key", "x", "--broker-url", broker_url)
    assert done.returncode == 1
    assert f"exchange '{missing}' does not exist" in done.stderr
    assert "--declare-exchange" in done.stderr
    assert "guest:guest" not in done.stderr
    done = tclisten("publish", missing, "--broker-url", broker_url)
    assert done.returncode == 2
    assert "no bundled reference, so no sample message" in done.stderr
    done = tclisten("publish", "QueueEvents.taskFailled", "--broker-url", broker_url)
    assert done.returncode == 2
    assert "did you mean 'QueueEvents.taskFailed'?" in done.stderr
    done = tclisten("publish", "QueueEvents.taskFailed", "--fields", "taskID=x", "--broker-url", broker_url)
    assert done.returncode == 2
    assert "did you mean 'taskId'?" in done.stderr
    done = tclisten("publish", missing, "--file", str(body), "--routing-key", "x")
    assert done.returncode == 2
    assert "no broker: give --broker-url" in done.stderr


def test_publish_a_schema_valid_sample(private_node):
    """On a broker of its own: the sample (message_for's, schema-valid) goes to Taskcluster's
    real exchange name."""
    from tclisten.topics import resolve

    topic = resolve("QueueEvents.taskFailed")
    with Connection(private_node.url) as conn, conn.channel() as channel:
        Exchange(topic.exchange, "topic", durable=True)(channel).declare()
        queue = Queue("queue/guest/sample", Exchange(topic.exchange, "topic"), routing_key="#", exclusive=True)(channel)
        queue.declare()
        done = tclisten("publish", "QueueEvents.taskFailed", "--fields", "provisionerId=proj-x", "runId=1",
                        "--route", "index.project.x", "--broker-url", private_node.url)
        assert done.returncode == 0, done.stderr
        message = queue.get(no_ack=True)
    body = json.loads(message.body)
    assert body["status"]["provisionerId"] == "proj-x"
    assert body["runId"] == 1
    assert message.delivery_info["routing_key"] == done.stdout.strip()
    assert ".proj-x." in done.stdout
    assert message.headers["CC"] == ["route.index.project.x"]


def test_migrate(listeners, broker_url):
    path = listeners.raw()
    if importlib.util.find_spec("tclisten.migrate") is None:
        done = tclisten("migrate", str(path), "--queue-type", "quorum", cwd=listeners.folder)
        assert done.returncode == 1
        assert "tclisten.migrate is missing" in done.stderr
        pytest.skip("tclisten.migrate is not written yet")
    app = build_listener(load_config(path))
    app.declare()
    publish(broker_url, app.topology.exchange.name, "due", {"x": 1})
    done = tclisten("migrate", str(path), "--queue-type", "quorum", cwd=listeners.folder)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"migrated the queues of {app.name} to quorum")
    assert message_count(broker_url, app.queue_name) == 1


def test_commands_that_connect_fail_fast_in_one_line(listeners):
    target = str(listeners.raw())
    nowhere = "amqp://operator:s3cret@127.0.0.1:1/ops"
    commands = [["parked", "list", target], ["parked", "requeue", target, "--all"],
                ["parked", "drop", target, "--all", "--yes"], ["bindings", "--diff", target],
                ["delete", target, "--yes"], ["publish", "QueueEvents.taskFailed"]]
    started = time.monotonic()
    running = [subprocess.Popen([sys.executable, "-m", "tclisten", *argv, "--broker-url", nowhere],
                                cwd=listeners.folder, env=clean_env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for argv in commands]
    for argv, process in zip(commands, running):  # side by side: each waits for kombu's one retry
        _, err = process.communicate(timeout=60)
        assert process.returncode == 1, (argv, err)
        last = err.strip().splitlines()[-1]
        assert last.startswith("tclisten: error: no broker after "), (argv, err)
        assert "127.0.0.1:1 vhost 'ops' as user 'operator'" in last, argv
        assert "s3cret" not in err, argv
    assert time.monotonic() - started < 30
