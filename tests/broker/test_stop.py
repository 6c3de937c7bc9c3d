"""Stopping a listener process with signals: in-flight handlers finish within the grace
period and are acked, the rest goes back to the queue, exit status 0; a second signal stops
at once.  Real subprocesses (``tests/support/faultkit.py`` as a script) on the real broker; counts
of handled messages against what is left in the queue, then a second listener drains the
queue to prove nothing was lost and nothing handled twice."""

from __future__ import annotations

import signal
import time
import uuid

import pytest

from support.faultkit import Processes, publish_tasks, queue_counts, tally, wait_until
from support.listener_kit import Broker, task_key, task_status, GROUP, slug
from tclisten.app import EXIT_UNFINISHED, Listener
from tclisten.exchanges import QueueEvents

@pytest.fixture
def setup(broker, tmp_path):
    """A listener name with its queue declared (as the script declares it), and a process
    group that kills whatever is left running."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    app = Listener(name, broker_url=broker.url, declare_exchanges=True)
    app.add_handler(lambda m, c: None, QueueEvents({"exchangePrefix": broker.prefix}).taskCompleted, name="h")
    app.declare()
    broker.forget_listener(app)
    with Processes(tmp_path, broker_url=broker.url, name=name, prefix=broker.prefix) as processes:
        yield app.queue_name, processes


def publish(broker: Broker, count: int) -> list[str]:
    tasks = [slug() for _ in range(count)]
    publish_tasks(broker.url, broker.exchange("task-completed"), tasks, GROUP, task_key, task_status)
    return tasks


def consuming(broker: Broker, queue: str, consumers: int = 1) -> None:
    wait_until(lambda: queue_counts(broker.url, queue)[1] == consumers, 20, f"{consumers} consumer(s) on {queue}")


def drain(broker: Broker, queue: str, processes: Processes, expected: int) -> list:
    """Run one more listener until the queue is empty and every message was seen; its records."""
    last = processes.spawn(sleep=0.0)
    wait_until(lambda: len(last.records()) >= expected, 30, f"{expected} messages drained")
    last.signal(signal.SIGTERM)
    assert last.wait(15) == 0
    return last.records()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_lets_running_handlers_finish_acks_them_and_exits_0(broker, setup, signum):
    queue, processes = setup
    tasks = publish(broker, 20)
    first = processes.spawn(sleep=0.5, concurrency=2, prefetch=10, grace=20)
    wait_until(lambda: len(first.started_ids()) >= 2, 20, "two handlers running")
    sent = time.monotonic()
    first.signal(signum)
    assert first.wait(20) == 0, first.log_text()[-2000:]
    took = time.monotonic() - sent
    done = first.records()
    started = first.started_ids()
    left, consumers = queue_counts(broker.url, queue)
    print(f"\nSTOP {signal.Signals(signum).name}: handled={len(done)} started={len(started)} "
          f"left_in_queue={left} exit_after={took:.1f}s")
    assert len(done) >= 2 and sorted(r.task_id for r in done) == sorted(started)  # none cut off
    assert len(done) + left == len(tasks) and consumers == 0  # acked exactly what was handled
    rest = drain(broker, queue, processes, left)
    result = tally(tasks, [(r.task_id, r.redelivered) for r in done + rest])
    print(f"STOP {result.line(signal.Signals(signum).name)}")
    assert result.lost == 0 and result.duplicates == 0


def test_no_handler_starts_after_the_signal(broker, setup):
    queue, processes = setup
    publish(broker, 20)
    first = processes.spawn(sleep=1.0, concurrency=2, prefetch=10, grace=20)
    wait_until(lambda: len(first.started_ids()) >= 2, 20, "two handlers running")
    first.signal(signal.SIGTERM)
    assert first.wait(20) == 0
    assert len(first.started_ids()) == 2 and len(first.records()) == 2
    assert queue_counts(broker.url, queue)[0] == 18


def test_grace_period_over_returns_the_unfinished_to_the_queue(broker, setup):
    queue, processes = setup
    tasks = publish(broker, 10)
    first = processes.spawn(sleep=60, concurrency=2, prefetch=4, grace=1)
    wait_until(lambda: len(first.started_ids()) >= 2, 20, "two handlers running")
    sent = time.monotonic()
    first.signal(signal.SIGTERM)
    assert first.wait(20) == EXIT_UNFINISHED, first.log_text()[-2000:]
    took = time.monotonic() - sent
    assert took < 1 + 3  # the grace period, then promptly
    assert first.records() == []
    assert "unfinished message" in first.log_text()
    left = queue_counts(broker.url, queue)[0]
    print(f"\nSTOP grace over: handled=0 left_in_queue={left} exit_after={took:.1f}s")
    assert left == len(tasks)
    rest = drain(broker, queue, processes, len(tasks))
    result = tally(tasks, [(r.task_id, r.redelivered) for r in rest])
    assert result.lost == 0 and result.duplicates == 0
    assert sum(r.redelivered for r in rest) >= 2  # the ones cut off come back marked


def test_second_signal_stops_at_once_losing_nothing(broker, setup):
    queue, processes = setup
    tasks = publish(broker, 10)
    first = processes.spawn(sleep=60, concurrency=2, prefetch=4, grace=60)
    wait_until(lambda: len(first.started_ids()) >= 2, 20, "two handlers running")
    sent = time.monotonic()
    first.signal(signal.SIGTERM)
    time.sleep(0.5)
    assert first.alive()  # still waiting for its handlers (grace 60 s)
    first.signal(signal.SIGTERM)
    assert first.wait(20) == EXIT_UNFINISHED, first.log_text()[-2000:]
    took = time.monotonic() - sent
    assert took < 3
    assert "stopping at once" in first.log_text()
    left = queue_counts(broker.url, queue)[0]
    print(f"\nSTOP second signal: handled=0 left_in_queue={left} exit_after={took:.1f}s")
    assert first.records() == [] and left == len(tasks)
    rest = drain(broker, queue, processes, len(tasks))
    result = tally(tasks, [(r.task_id, r.redelivered) for r in rest])
    assert result.lost == 0 and result.duplicates == 0


def test_no_handler_runs_after_run_returns(broker):
    from support.faultkit import Running

    app = Listener(f"test-{uuid.uuid4().hex[:8]}", broker_url=broker.url, declare_exchanges=True, concurrency=1,
                   prefetch=5, grace_period=0.1)
    broker.forget_listener(app)
    started = []

    @app.on(QueueEvents({"exchangePrefix": broker.prefix}).taskCompleted)
    def slow(message, ctx):
        started.append(time.monotonic())
        time.sleep(0.3)

    app.declare()
    publish(broker, 5)
    with Running(app):
        wait_until(lambda: started, 20, "a handler running")
    returned = time.monotonic()
    time.sleep(1.0)
    assert all(t < returned for t in started), f"{sum(t >= returned for t in started)} handler(s) after run()"
