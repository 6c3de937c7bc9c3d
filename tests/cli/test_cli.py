"""The tclisten command: help everywhere, exit codes, bindings, replay, record on the real
broker, references, parked messages."""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tclisten.cli.commands import catch_all, main
from tclisten.testing.factories import message_for

ROOT = Path(__file__).resolve().parents[2]

HANDLERS = """\
seen = []

def on_failed(message, ctx):
    if message.body["status"]["taskId"].startswith("B"):
        raise RuntimeError("boom on " + message.body["status"]["taskId"])
    seen.append(message.routing_key)

def on_any(message, ctx):
    seen.append(message.routing_key)
"""


def listener_yaml(tmp_path: Path, extra: str = "", bindings: str | None = None) -> Path:
    name = f"cli-test-{uuid.uuid4().hex[:8]}"
    (tmp_path / "handlers.py").write_text(HANDLERS)
    bindings = bindings or """\
      - exchange: QueueEvents.taskFailed
        fields: {provisionerId: proj-example}
        handler: handlers.py:on_failed
    """
    path = tmp_path / "listener.yaml"
    path.write_text(f"name: {name}\nbroker_url: amqp://guest:guest@127.0.0.1:5672//\n{extra}bindings:\n"
                    + textwrap.dedent(bindings))
    return path


@pytest.fixture(autouse=True)
def _restore_logging():
    """main() configures the root logger, as a command should; undo it between tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# --------------------------------------------------------------------------- help and usage


@pytest.mark.parametrize("argv", [
    [], ["run"], ["bindings"], ["replay"], ["record"], ["references"], ["references", "import"],
    ["references", "check"], ["parked"], ["parked", "list"], ["parked", "requeue"], ["parked", "drop"],
    ["delete"], ["migrate"], ["publish"], ["demo"],
])
def test_help_everywhere(argv, capsys):
    status, out, _ = run_cli(capsys, *argv, "--help")
    assert status == 0
    assert "usage: tclisten" in out


def _parsers(parser, path=("tclisten",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, (*path, name))


def test_every_option_of_every_command_has_help():
    from tclisten.cli.commands import build_parser

    missing = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{' '.join(path)} {a.dest}" for a in action._choices_actions if not a.help]
    assert missing == []
    assert len(list(_parsers(build_parser()))) >= 15


@pytest.mark.parametrize("argv", [
    [], ["bogus"], ["run"], ["replay", "x.jsonl"], ["record"], ["record", "--exchange", "x", "--count", "0"],
    ["references"], ["parked", "list"], ["bindings", "a", "b"], ["--log-level", "LOUD", "run", "x"],
])
def test_usage_errors_exit_2(argv, capsys):
    status, _, err = run_cli(capsys, *argv)
    assert status == 2
    assert "error:" in err


def test_config_errors_exit_2_in_one_line(tmp_path, capsys):
    path = listener_yaml(tmp_path, extra="prefetch: lots\n")
    status, _, err = run_cli(capsys, "bindings", str(path))
    assert status == 2
    assert err.strip() == f"tclisten: error: {path}:3: prefetch: expected an integer, found a string"
    status, _, err = run_cli(capsys, "bindings", str(path), "--debug")
    assert status == 2
    assert "Traceback" in err
    status, _, err = run_cli(capsys, "bindings", str(tmp_path / "missing.yaml"))
    assert status == 2
    assert "cannot be read" in err


# --------------------------------------------------------------------------- bindings


def test_bindings_yaml(tmp_path, capsys):
    path = listener_yaml(tmp_path, bindings="""\
      - exchange: QueueEvents.taskFailed
        fields: {provisionerId: proj-example}
        handler: handlers.py:on_failed
      - exchange: QueueEvents.taskException
        handler: handlers.py:on_any
      - exchange: QueueEvents.taskCompleted
        route: index.project.#
        handler: handlers.py:on_any
    """)
    status, out, err = run_cli(capsys, "bindings", str(path))
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("queue: queue/guest/cli-test-")
    assert lines[1].split() == ["EXCHANGE", "PATTERN", "HANDLER"]
    assert lines[2].split()[:2] == ["exchange/taskcluster-queue/v1/task-failed",
                                    "primary.*.*.*.*.proj-example.*.*.*.#"]
    assert lines[2].split()[2].endswith(".on_failed")  # module named after handlers.py
    assert lines[3].split()[:2] == ["exchange/taskcluster-queue/v1/task-exception",
                                    "primary.*.*.*.*.*.*.*.*.#"]
    assert lines[4].split()[1] == "route.index.project.#"
    warnings = err.strip().splitlines()
    assert len(warnings) == 1
    assert "every message of exchange/taskcluster-queue/v1/task-exception" in warnings[0]

    status, out, _ = run_cli(capsys, "bindings", "--json", str(path))
    data = json.loads(out)
    assert data["queue"].startswith("queue/guest/")
    assert len(data["bindings"]) == 3


def test_catch_all_rule():
    failed = "exchange/taskcluster-queue/v1/task-failed"
    assert catch_all(failed, "#")
    assert catch_all(failed, "primary.#")
    assert catch_all(failed, "*.#")
    assert catch_all(failed, "route.#")
    assert not catch_all(failed, "route.index.#")
    assert not catch_all(failed, "primary.abc.*.*.*.*.*.*.*.#")
    assert catch_all("exchange/someone/else", "#")
    assert not catch_all("exchange/someone/else", "a.#")


def test_bindings_module_and_script_targets(tmp_path, capsys, monkeypatch):
    mod = f"cli_app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{mod}.py").write_text(textwrap.dedent(f"""\
        from tclisten.app import Listener
        app = Listener("{mod}", broker_url="amqp://guest:guest@127.0.0.1:5672//")

        @app.on("QueueEvents.taskGroupResolved", schedulerId="gecko-level-3")
        def resolved(message, ctx):
            pass

        def make():
            return app
        """))
    monkeypatch.chdir(tmp_path)
    for target in (mod, f"{mod}:app", f"{mod}:make", f"{mod}.py", f"{mod}.py:app"):
        status, out, err = run_cli(capsys, "bindings", target)
        assert status == 0, err
        assert f"queue/guest/{mod}" in out, target
        assert "primary.*.gecko-level-3.#" in out, target
    factory_mod = f"cli_factory_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{factory_mod}.py").write_text(textwrap.dedent("""\
        from tclisten.app import Listener

        def create_listener(name="from-factory"):
            app = Listener(name, broker_url="amqp://guest:guest@127.0.0.1:5672//")
            app.add_handler(print, "QueueEvents.taskPending", name="printer", provisionerId="p")
            return app
        """))
    for target in (factory_mod, f"{factory_mod}.py", f"{factory_mod}:create_listener"):
        status, out, err = run_cli(capsys, "bindings", target)
        assert status == 0, err
        assert "queue/guest/from-factory" in out, target
        assert "printer" in out, target
    status, _, err = run_cli(capsys, "bindings", f"{mod}:nothing")
    assert status == 2
    assert "has no attribute 'nothing'" in err
    status, _, err = run_cli(capsys, "bindings", "no_such_module_qq")
    assert status == 2
    assert "No module named 'no_such_module_qq'" in err


def test_bindings_decorated_script(tmp_path):
    """A script using module-level ``@tclisten.app.on``: its default listener is taken, named
    after the script.  (A subprocess: the default listener is one per process.)"""
    script = tmp_path / "reactor.py"
    script.write_text(textwrap.dedent("""\
        from tclisten import app as tclisten

        @tclisten.on("QueueEvents.taskCompleted", route="index.project.x.#")
        def indexed(message, ctx):
            pass

        if __name__ == "__main__":
            tclisten.run()
        """))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TCLISTEN_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//"}
    env.pop("TCLISTEN_NAME", None)
    done = subprocess.run([sys.executable, "-m", "tclisten", "bindings", "reactor.py"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "queue: queue/guest/reactor" in done.stdout
    assert "route.index.project.x.#  reactor.indexed" in done.stdout


# --------------------------------------------------------------------------- replay


def test_replay(tmp_path, capsys):
    path = listener_yaml(tmp_path)
    records = [
        message_for("QueueEvents.taskFailed", taskId="fN1SbArXTPSVFNUvaOlinQ"),
        message_for("QueueEvents.taskFailed", taskId="fN1SbArXTPSVFNUvaOlinQ", provisionerId="other"),
        message_for("QueueEvents.taskCompleted"),
    ]
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(m.as_record()) + "\n" for m in records) + "\n")
    status, out, err = run_cli(capsys, "replay", str(good), str(path), "--progress", "2")
    assert status == 0, err
    assert out.startswith("replayed 3 messages (")
    assert out.rstrip().endswith("1 handled, 0 failed, 2 unmatched")
    assert "replayed 2 messages ..." in err

    failing = message_for("QueueEvents.taskFailed", taskId="BAAAAAAAQAAAAAAAAAAAAA")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(records[0].as_record()) + "\n" + json.dumps(failing.as_record()) + "\n"
                   + "{not json\n" + json.dumps({"exchange": "x"}) + "\n")
    status, out, err = run_cli(capsys, "replay", str(bad), str(path))
    assert status == 1
    assert out.rstrip().endswith("1 handled, 1 failed, 0 unmatched, 2 invalid")
    assert re.search(rf"{re.escape(str(bad))}:2: \S*handlers\S*\.on_failed failed: "
                     "RuntimeError: boom on BAAAAAAAQAAAAAAAAAAAAA", err), err
    assert f"{bad}:3: not JSON" in err
    assert f"{bad}:4: expected an object" in err


def test_replay_example_messages(tmp_path, capsys):
    path = listener_yaml(tmp_path, bindings="""\
      - exchange: QueueEvents.taskException
        handler: handlers.py:on_any
      - exchange: QueueEvents.taskCompleted
        route: index.project.example.#
        handler: handlers.py:on_any
    """)
    status, out, _ = run_cli(capsys, "replay", str(ROOT / "examples" / "messages" / "all.jsonl"), str(path))
    assert status == 0
    assert out.rstrip().endswith("4 handled, 0 failed, 3 unmatched")
    # a pretty-printed .json sample is one record
    sample = ROOT / "examples" / "messages" / "task-exception-internal-error.json"
    status, out, _ = run_cli(capsys, "replay", str(sample), str(path))
    assert status == 0
    assert out.startswith("replayed 1 messages")
    assert "1 handled" in out
    many = tmp_path / "many.json"
    many.write_text(json.dumps([json.loads(sample.read_text())] * 2 + [{"bad": 1}]))
    status, out, err = run_cli(capsys, "replay", str(many), str(path))
    assert status == 1
    assert "2 handled" in out
    assert "1 invalid" in out
    assert f"{many}:3: expected an object" in err


# --------------------------------------------------------------------------- record (real broker)


def test_record_real_broker(tmp_path, broker_url):
    from kombu import Connection, Exchange, Producer

    name = f"exchange/guest/tclisten-test-record-{uuid.uuid4().hex[:8]}"
    output = tmp_path / "recorded.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with Connection(broker_url) as conn:
        exchange = Exchange(name, "topic", durable=False)
        exchange(conn.channel()).declare()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tclisten", "record", "--exchange", name, "--pattern", "primary.#",
                 "--count", "3", "--timeout", "30", "--output", str(output), "--broker-url", broker_url],
                stderr=subprocess.PIPE, text=True, env=env)
            ready = proc.stderr.readline()
            assert ready.startswith(f"recording {name}"), ready + proc.stderr.read()
            assert "queue/guest/record-" in ready
            producer = Producer(conn.channel(), exchange=exchange)
            producer.publish({"skip": True}, routing_key="secondary.x")
            sent = [message_for("QueueEvents.taskCompleted", routes=["index.a"]) for _ in range(3)]
            for m in sent:
                producer.publish(json.dumps(m.body), routing_key=m.routing_key, headers=m.headers,
                                 delivery_mode=2, content_type="application/json", content_encoding="utf-8")
            assert proc.wait(timeout=30) == 0
            assert "recorded 3 messages" in proc.stderr.read()
        finally:
            exchange(conn.channel()).delete()
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["routing_key"] for r in lines] == [m.routing_key for m in sent]
    assert lines[0]["exchange"] == name
    assert lines[0]["body"] == sent[0].body
    assert lines[0]["headers"]["CC"] == ["route.index.a"]


def test_record_missing_exchange_fails(capsys, broker_url):
    name = f"exchange/guest/tclisten-test-none-{uuid.uuid4().hex[:8]}"
    status, _, err = run_cli(capsys, "record", "--exchange", name, "--count", "1", "--broker-url", broker_url)
    assert status == 1
    assert "does not exist" in err
    assert "guest:guest" not in err
    status, _, err = run_cli(capsys, "record", "--exchange", "QueueEvents.taskFailled", "--broker-url", broker_url)
    assert status == 2
    assert "did you mean 'QueueEvents.taskFailed'" in err
    wrong = broker_url.replace("guest:guest@", "guest:hunter2@")
    status, _, err = run_cli(capsys, "record", "--exchange", name, "--count", "1", "--broker-url", wrong)
    assert status == 1
    assert "ACCESS_REFUSED" in err
    assert "hunter2" not in err
    assert len(err.strip().splitlines()) == 1


def test_docstring_examples():
    import doctest

    import tclisten.cli.commands as cli

    result = doctest.testmod(cli)
    assert result.failed == 0
    assert result.attempted > 0


# --------------------------------------------------------------------------- references


def test_references_import_and_check(tmp_path, capsys, shared_references):
    dest = tmp_path / "refs"
    deployment = shared_references / "tc-example-deployment"
    seed = shared_references / "seed-2015" / "apis.json"
    # a subprocess: importing resets the process's cache of bundled references
    done = subprocess.run([sys.executable, "-m", "tclisten", "references", "import", str(deployment), str(seed),
                           "--dest", str(dest)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert (dest / "manifest.json").is_file()
    assert (dest / "queue" / "v1" / "exchanges.json").is_file()
    assert "manifest.json to" in done.stderr
    assert str(dest / "manifest.json") in done.stdout
    status, out, _ = run_cli(capsys, "references", "check", str(dest))
    assert status == 0
    assert "QueueEvents" in out
    assert "SchedulerEvents" in out
    assert "references valid" in out

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"serviceName": "x", "apiVersion": "v1", "entries": [{"type": "function"}]}))
    status, _, err = run_cli(capsys, "references", "check", str(broken))
    assert status == 1
    assert "missing 'name'" in err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- demo


def test_demo_reserved(capsys):
    if importlib.util.find_spec("tclisten.cli.demo") is not None:
        pytest.skip("tclisten.cli.demo exists: the demo runs instead")
    status, _, err = run_cli(capsys, "demo")
    assert status == 1
    assert "no demo" in err


def test_python_dash_m(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tclisten", "--help"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert done.returncode == 0
    assert "usage: tclisten" in done.stdout


def test_logging_is_configured_by_the_command(tmp_path, capsys):
    root = logging.getLogger()
    path = listener_yaml(tmp_path, extra="logging: {level: debug, format: json}\n")
    assert run_cli(capsys, "bindings", str(path))[0] == 0
    assert root.level == logging.DEBUG  # the file's level when the command line gives none
    assert run_cli(capsys, "bindings", str(path), "--log-level", "error")[0] == 0
    assert root.level == logging.ERROR
    assert run_cli(capsys, "--log-level", "INFO", "bindings", str(path))[0] == 0
    assert root.level == logging.INFO
    logging.getLogger("tclisten.test").warning("hello %s", "there")
    record = json.loads(capsys.readouterr().err)  # the file's format, whatever the level
    assert (record["message"], record["level"]) == ("hello there", "WARNING")
    assert run_cli(capsys, "bindings", "--log-level", "INFO", str(listener_yaml(tmp_path)))[0] == 0
    logging.getLogger("tclisten.test").warning("hello %s", "again")
    assert " WARNING tclisten.test: hello again" in capsys.readouterr().err
