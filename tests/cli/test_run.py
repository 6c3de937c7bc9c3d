"""``tclisten run`` through the real command: logs on by default (text or one JSON object per
line), overrides from the command line and TCLISTEN_*, the health port, the stop summary and
exit status, a broker that refuses or is not there, and targets that run themselves."""

from __future__ import annotations

import json
import re
import signal
import textwrap
import time
import urllib.request

import pytest
from clikit import ROOT, Lines, clean_env, publish, readme_listener, start, tclisten

from tclisten.options import OPTIONS

NOWHERE = "amqp://guest:s3cret@127.0.0.1:1/some-vhost"  # nothing listens on port 1
REFUSED = "amqp://guest:s3cret@127.0.0.1:5672/"  # a wrong password: the start stops at once


def test_run_logs_json_lines_serves_health_and_summarises(listeners, broker_url):
    exchange = listeners.exchange()
    path = listeners.raw(exchange=exchange)
    process = start("run", str(path), "--log-format", "json", "--health-port", "0", cwd=listeners.folder)
    lines = Lines(process)
    try:
        health = lines.until("health and metrics on")
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/healthz", health).group(1))
        lines.until("consuming")
        publish(broker_url, exchange, "mozilla-central.push", {"pushid": 1})
        lines.until("push mozilla-central.push")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            assert answer.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
    seen = lines.rest()
    assert process.returncode == 0, "\n".join(seen)
    records = [json.loads(line) for line in seen]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    summary = records[-1]
    assert summary["logger"] == "tclisten.cli"
    assert summary["message"].endswith("nothing left unfinished")
    assert (summary["received"], summary["acked"], summary["exit_status"]) == (1, 1, 0)


def test_run_text_logs_at_info_by_default_and_exit_75_when_grace_runs_out(listeners, broker_url):
    exchange = listeners.exchange()
    path = listeners.raw("handlers.py:on_slow", exchange=exchange)
    process = start("run", str(path), "--grace-period", "0.2", cwd=listeners.folder)
    lines = Lines(process)
    try:
        assert " INFO tclisten.app: listener " in lines.until("starting")
        lines.until("consuming")
        publish(broker_url, exchange, "a", {"sleep": 30})
        lines.until("sleeping")
    finally:
        process.send_signal(signal.SIGTERM)
    seen = lines.rest()
    assert process.returncode == 75, "\n".join(seen)
    assert seen[-1].startswith("tclisten: exit status 75: listener ")
    assert "1 unfinished, left to the broker" in seen[-1]


def test_overrides_command_line_then_environment_then_the_file(listeners):
    path = listeners.raw(extra="prefetch: 50\nconcurrency: 2\ngrace_period: 4\nhealth_port: 9999\n")
    env = clean_env(TCLISTEN_PREFETCH="40", TCLISTEN_CONCURRENCY="3", TCLISTEN_HANDLER_TIMEOUT="none",
                    TCLISTEN_BROKER_URL="amqp://env:env@127.0.0.1:1//")
    done = tclisten("run", str(path), "--prefetch", "30", "--broker-url", REFUSED, "--queue-type", "quorum",
                    "--health-port", "0", "--health-host", "0.0.0.0", cwd=listeners.folder, env=env)
    assert done.returncode == 1, done.stderr
    assert ("prefetch 30, concurrency 3, grace_period 4 s, handler_timeout none, queue_type quorum, "
            "health on 0.0.0.0:any free port; broker amqp://guest:****@127.0.0.1:5672/") in done.stderr
    assert "s3cret" not in done.stderr


def test_unreachable_broker_with_a_wait_limit(listeners):
    done = tclisten("run", str(listeners.raw()), "--broker-url", NOWHERE, "--wait-for-broker", "0")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("tclisten: error: no broker after ")
    assert "127.0.0.1:1 vhost 'some-vhost' as user 'guest'" in last
    assert "s3cret" not in done.stderr


def test_overrides_reach_a_listener_built_in_python(tmp_path):
    (tmp_path / "pyapp.py").write_text(textwrap.dedent("""\
        from tclisten import Listener
        app = Listener("pyapp", broker_url="amqp://guest:guest@127.0.0.1:5672//", prefetch=10, concurrency=2)

        @app.on("exchange/guest/nowhere", routing_key="#")
        def handle(message, ctx):
            pass
        """))
    done = tclisten("run", "pyapp.py", "--broker-url", REFUSED, "--handler-timeout", "9",
                    cwd=tmp_path, env=clean_env(TCLISTEN_CONCURRENCY="4", TCLISTEN_GRACE_PERIOD="1.5"))
    assert done.returncode == 1
    assert ("listener pyapp: prefetch 10, concurrency 4, grace_period 1.5 s, handler_timeout 9 s, queue_type "
            "classic; broker amqp://guest:****@127.0.0.1:5672/") in done.stderr
    done = tclisten("run", "pyapp.py", "--concurrency", "11", cwd=tmp_path)
    assert done.returncode == 2
    assert "prefetch (10) must be at least concurrency (11)" in done.stderr


def test_bad_override_values_are_usage_errors(listeners):
    path = listeners.raw()
    done = tclisten("run", str(path), "--prefetch", "0")
    assert done.returncode == 2
    assert "prefetch must be an integer >= 1, not 0" in done.stderr
    done = tclisten("run", str(path), env=clean_env(TCLISTEN_PREFETCH="lots"))
    assert done.returncode == 2
    assert "TCLISTEN_PREFETCH: prefetch must be an integer >= 1" in done.stderr
    done = tclisten("run", str(path), "--log-format", "xml")
    assert done.returncode == 2
    assert "log format must be one of text, json" in done.stderr


def test_refused_login_fails_at_once_in_one_line(listeners, broker_url):
    path = listeners.raw()
    wrong = broker_url.replace("guest:guest@", "guest:hunter2@")
    started = time.monotonic()
    done = tclisten("run", str(path), "--broker-url", wrong, "--log-level", "warning")
    assert done.returncode == 1
    assert time.monotonic() - started < 20
    assert done.stderr.strip().splitlines() == [
        "tclisten: error: the broker at 127.0.0.1:5672 vhost '/' as user 'guest' refused the login (check the "
        "user and password): " + done.stderr.split("(check the user and password): ", 1)[1].strip()]
    assert "hunter2" not in done.stderr


def test_help_shows_every_override_with_its_default_and_variable():
    done = tclisten("run", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for option in OPTIONS.values():
        if option.cli:
            assert option.flag in text, option.name
            assert option.env in text, option.name
    assert "(default: the target's, else 200); env TCLISTEN_PREFETCH" in text
    for flag in ("--workers", "--log-level", "--log-format", "--wait-for-broker"):
        assert flag in text


def test_a_script_that_runs_itself_is_inspected_without_consuming(tmp_path):
    """The README's ten-line listener ends with app.run(): inspecting it returns at once."""
    (tmp_path / "ten.py").write_text(readme_listener())
    done = tclisten("bindings", "ten.py", cwd=tmp_path, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "primary.*.*.*.*.*.*.*.fWxWbBvDQS2Q4XXc9U-Hnw.#  ten.retry_infra_failures" in done.stdout
    (tmp_path / "none.jsonl").write_text("")
    done = tclisten("replay", "none.jsonl", "ten.py", cwd=tmp_path, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("replayed 0 messages"), done.stderr
    # run: imported without consuming, then run once, with the overrides
    done = tclisten("run", "ten.py", "--broker-url", REFUSED, cwd=tmp_path, timeout=30)
    assert done.returncode == 1
    assert done.stderr.count("listener my-reactor starting") == 1


def test_handler_only_variables_are_not_needed_to_inspect():
    env = clean_env()  # no TASKCLUSTER_ROOT_URL
    done = tclisten("bindings", "examples/listener.yaml", env=env)
    assert done.returncode == 0, done.stderr
    assert "queue: queue/guest/failure-mailer" in done.stdout
    done = tclisten("run", "examples/listener.yaml", env=env)
    assert done.returncode == 2
    line = next(n for n, text in enumerate((ROOT / "examples" / "listener.yaml").read_text().splitlines(), 1)
                if "rootUrl:" in text)
    assert (f"examples/listener.yaml:{line}: taskcluster.rootUrl: environment variable TASKCLUSTER_ROOT_URL "
            "is not set") in done.stderr


def test_workers_need_the_worker_module(listeners):
    import importlib.util

    if importlib.util.find_spec("tclisten.workers") is not None:
        pytest.skip("tclisten.workers is installed: tests/test_workers.py covers it")
    done = tclisten("run", str(listeners.raw()), "--workers", "3")
    assert done.returncode == 2
    assert "start 3 copies of `tclisten run` instead" in done.stderr
    done = tclisten("run", str(listeners.raw()), "--workers", "0")
    assert done.returncode == 2
    assert "workers must be an integer >= 1" in done.stderr
