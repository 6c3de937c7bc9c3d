"""The offline main job: ``tclisten demo`` / ``python -m tclisten.cli.demo``."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tclisten.cli import demo
from tclisten.cli import main as cli_main
from tclisten.testing.factories import message_for

ROOT = Path(__file__).resolve().parents[2]

INFRA = "QotBKzuQQ2SiLOUqQ2oabw"  # worker-shutdown, in examples/messages
SECOND_INFRA = "L0sWmhxuSc6YJz4FQT5IZA"  # internal-error, same task group
CANCELED = "NSa61LI7RP67tmLiU056gQ"


def run_demo(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = demo.main(list(argv), out=out)
    return status, out.getvalue()


def test_python_m_tclisten_demo_runs_offline_and_says_what_happened():
    # a user's real settings must not leak into the offline demo
    env = {**os.environ, "TASKCLUSTER_ROOT_URL": "https://tc.invalid", "TASKCLUSTER_CLIENT_ID": "someone",
           "TASKCLUSTER_ACCESS_TOKEN": "not-the-demo-key", "TASKCLUSTER_CERTIFICATE": '{"version": 1}',
           "TCLISTEN_BROKER_URL": "amqp://nobody:secret@127.0.0.1:1//", "PULSE_USERNAME": "someone",
           "PULSE_PASSWORD": "secret"}
    done = subprocess.run([sys.executable, "-m", "tclisten.cli.demo"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "kombu memory://" in out
    assert "Listener.run" in out
    assert f"rerun {INFRA} (worker-shutdown)" in out
    assert f"skip {SECOND_INFRA} (internal-error)" in out
    assert "budget spent" in out
    assert f"ignore {CANCELED} (canceled)" in out
    assert "task-completed fN1SbArXTPSVFNUvaOlinQ" in out
    assert "no binding matches" in out
    assert "report-resolved-groups: task group Wt-6mxx-QlCQtBZXj5DNPw resolved: 5 task(s)" in out
    assert "summary: 7 published, 4 delivered, 4 handler call(s), 0 retried, 0 parked" in out
    assert "REST calls (all Hawk-signed and verified): queue.listTaskGroup x1, queue.rerunTask x1, " \
           "queue.status x2, queue.task x2" in out
    assert "Traceback" not in done.stderr
    assert "Warning" not in done.stderr


def test_main_twice_in_one_process_with_another_budget():
    for _ in range(2):  # the process-wide memory broker is left clean
        status, out = run_demo("--max-reruns-per-group", "3")
        assert status == 0, out
        assert f"rerun {INFRA}" in out
        assert f"rerun {SECOND_INFRA}" in out
        assert "reactor decisions: 1 ignore, 2 rerun" in out
        assert "summary: 7 published, 4 delivered" in out


def test_the_tclisten_command_runs_it(capsys):
    assert cli_main(["demo", "--max-reruns-per-group", "0"]) == 0
    assert "reactor decisions: 1 ignore, 2 skip" in capsys.readouterr().out


def test_own_messages_and_failures_give_exit_status_1(tmp_path):
    good = message_for("QueueEvents.taskException", reasonResolved="claim-expired", retriesLeft=0).as_record()
    broken = {**message_for("QueueEvents.taskException").as_record(), "body": {"version": 1}}
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps(good) + "\n")
    status, out = run_demo("--messages", str(path))
    assert status == 0
    assert "reactor decisions: 1 rerun" in out
    path.write_text(json.dumps(good) + "\n" + json.dumps(broken) + "\n")
    status, out = run_demo("--messages", str(path))
    assert status == 1
    assert "2 retried, 1 parked" in out
    path.write_text("")
    assert run_demo("--messages", str(path))[0] == 2


def test_examples_are_found_installed_or_in_a_checkout(tmp_path, monkeypatch):
    assert demo.examples_dir() == ROOT / "examples"
    installed = tmp_path / "site-packages" / "tclisten"
    (installed / "examples" / "messages").mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "reactor.py", installed / "examples" / "reactor.py")
    monkeypatch.setattr(demo, "__file__", str(installed / "cli" / "demo.py"))
    assert demo.examples_dir() == installed / "examples"


def test_doctests():
    import doctest

    result = doctest.testmod(demo)
    assert result.failed == 0
    assert result.attempted >= 1
