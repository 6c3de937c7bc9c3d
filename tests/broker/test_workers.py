"""Worker processes through the real command: ``python -m tclisten run TARGET --workers 2``.

A small target script (written to tmp_path) binds the test exchange with
``declare_exchanges=True`` and appends ``taskId pid`` of every handled message to a file, so
the tests see which worker handled what.  The queue's ready + unacked count comes from
``rabbitmqctl list_queues`` (a passive declare only tells the ready ones)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from support.faultkit import publish_tasks, queue_counts, wait_until
from support.listener_kit import GROUP, Broker, task_key, task_status
from tclisten.app import Listener

ROOT = Path(__file__).resolve().parents[2]

TARGET = '''
import os, time
from tclisten import Listener
from tclisten.exchanges import QueueEvents

app = Listener({name!r}, declare_exchanges=True, prefetch={prefetch}, grace_period=20)
SLEEP = {sleep!r}
OUT = {out!r}


@app.on(QueueEvents({{"exchangePrefix": {prefix!r}}}).taskCompleted)
def record(message, ctx):
    time.sleep(SLEEP)
    with open(OUT, "a") as f:  # O_APPEND: one line per write, whole, whatever the process
        f.write(f"{{message.routing.taskId}} {{os.getpid()}}\\n")
'''


class Workers:
    """``python -m tclisten run target.py --workers N`` in a subprocess, and what it handled."""

    def __init__(self, tmp_path: Path, broker: Broker, *, sleep: float, prefetch: int = 10) -> None:
        self.name = f"test-workers-{uuid.uuid4().hex[:8]}"
        self.out = tmp_path / "handled.txt"
        self.log = tmp_path / "stderr.log"
        self.target = tmp_path / "target.py"
        self.target.write_text(TARGET.format(name=self.name, prefetch=prefetch, sleep=sleep, out=str(self.out),
                                             prefix=broker.prefix))
        self.broker = broker
        self.popen: subprocess.Popen | None = None
        app = Listener(self.name, broker_url=broker.url)
        self.queue = app.queue_name
        broker.forget_listener(app)

    def start(self, workers: int = 2) -> "Workers":
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "tclisten", "run", str(self.target), "--workers", str(workers),
             "--broker-url", self.broker.url], cwd=self.target.parent, env=env,
            stdout=subprocess.DEVNULL, stderr=self.log.open("w"), start_new_session=True)
        wait_until(lambda: queue_counts(self.broker.url, self.queue)[1] == workers, 60,
                   f"{workers} consumers on {self.queue}\n{self.log_text()[-3000:]}", interval=0.2)
        return self

    def records(self) -> list[tuple[str, int]]:
        if not self.out.exists():
            return []
        return [(task, int(pid)) for task, pid in (line.split() for line in self.out.read_text().splitlines())]

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def signal(self, signum: int) -> None:
        assert self.popen is not None
        self.popen.send_signal(signum)

    def wait(self, timeout: float) -> int:
        assert self.popen is not None
        return self.popen.wait(timeout)

    def close(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)  # the supervisor's own session
            self.popen.wait(10)
        for pid in {pid for _, pid in self.records()}:  # workers run in process groups of their own
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def workers(broker, tmp_path):
    made: list[Workers] = []

    def make(**options) -> Workers:
        made.append(Workers(tmp_path, broker, **options))
        return made[-1]

    yield make
    for w in made:
        w.close()


def publish(broker: Broker, count: int) -> list[str]:
    tasks = [uuid.uuid4().hex[:22] for _ in range(count)]
    publish_tasks(broker.url, broker.exchange("task-completed"), tasks, GROUP, task_key, task_status)
    return tasks


def ready_and_unacked(queue: str) -> int:
    """Messages in the queue, delivered-and-unacked ones included (rabbitmqctl's ``messages``)."""
    out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name", "messages"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    for line in out.splitlines():
        name, _, messages = line.rpartition("\t")
        if name == queue:
            return int(messages)
    raise AssertionError(f"no queue {queue} in rabbitmqctl list_queues")


def test_two_workers_both_consume_and_sigterm_exits_0(broker, workers):
    w = workers(sleep=0.002).start(2)
    tasks = publish(broker, 600)
    wait_until(lambda: len({t for t, _ in w.records()}) == len(tasks), 60, "every message handled", interval=0.1)
    per_worker = Counter(pid for _, pid in w.records())
    print(f"\nWORKERS handled per process: {dict(per_worker)}")
    assert len(per_worker) == 2 and min(per_worker.values()) > 0
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0, w.log_text()[-3000:]
    assert sorted(t for t, _ in w.records()) == sorted(tasks)  # each exactly once
    assert queue_counts(broker.url, w.queue) == (0, 0)
    assert "workers stopped, exit status 0" in w.log_text()


def test_a_killed_worker_is_restarted_and_nothing_is_lost(broker, workers):
    w = workers(sleep=0.005).start(2)
    tasks = publish(broker, 1500)
    wait_until(lambda: len({pid for _, pid in w.records()}) == 2 and len(w.records()) > 100, 60,
               "both workers handling")
    victim = w.records()[-1][1]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: "was killed by SIGKILL" in w.log_text(), 10, "the death logged")
    wait_until(lambda: w.log_text().count(" started (pid ") == 3, 30, "a third worker process started")
    wait_until(lambda: queue_counts(broker.url, w.queue)[1] == 2, 30, "two consumers again")
    wait_until(lambda: len({t for t, _ in w.records()}) == len(tasks), 90, "every message handled",
               interval=0.1)
    pids = {pid for _, pid in w.records()}
    wait_until(lambda: ready_and_unacked(w.queue) == 0, 60, "ready + unacked at 0", interval=0.5)
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0, w.log_text()[-3000:]
    handled = Counter(t for t, _ in w.records())
    print(f"\nWORKERS killed {victim}; processes that handled messages: {len(pids)}; "
          f"handled twice (the victim's prefetch window): {sum(1 for n in handled.values() if n > 1)}")
    assert set(handled) == set(tasks)  # at least once
    assert victim in pids and "restarting it in 1 s" in w.log_text()
    assert queue_counts(broker.url, w.queue) == (0, 0)


def test_sigterm_stops_every_worker_and_the_queue_keeps_the_unstarted(broker, workers):
    w = workers(sleep=0.3, prefetch=10).start(2)
    tasks = publish(broker, 100)
    wait_until(lambda: len({pid for _, pid in w.records()}) == 2, 30, "both workers handling")
    sent = time.monotonic()
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0, w.log_text()[-3000:]
    took = time.monotonic() - sent
    handled = [t for t, _ in w.records()]
    left, consumers = queue_counts(broker.url, w.queue)
    print(f"\nWORKERS SIGTERM: handled {len(handled)}, left in the queue {left}, stopped in {took:.1f} s")
    assert consumers == 0
    assert len(set(handled)) == len(handled) and len(handled) + left == len(tasks)  # acked exactly what ran
    assert left >= len(tasks) - 30


def test_a_second_sigterm_is_forwarded_and_stops_at_once(broker, workers):
    w = workers(sleep=30, prefetch=2).start(2)
    tasks = publish(broker, 10)
    wait_until(lambda: queue_counts(broker.url, w.queue)[0] <= len(tasks) - 4, 20, "handlers running")
    w.signal(signal.SIGTERM)
    time.sleep(1.0)
    assert w.popen.poll() is None  # the handlers sleep 30 s; the grace period is 20 s
    w.signal(signal.SIGTERM)
    assert w.wait(20) == 75, w.log_text()[-3000:]
    wait_until(lambda: queue_counts(broker.url, w.queue) == (len(tasks), 0), 20, "every message back")
