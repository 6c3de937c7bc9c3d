"""Competing consumers: several listener processes on one durable queue share the work.
Exactly once when nothing fails; at least once, duplicates within the killed process's
prefetch window and marked redelivered, when one process is SIGKILLed mid-stream."""

from __future__ import annotations

import signal
import uuid
from collections import Counter

import pytest

from support.faultkit import Processes, publish_tasks, queue_counts, read_records, tally, wait_until
from support.listener_kit import Broker, task_key, task_status, GROUP
from tclisten.app import Listener
from tclisten.exchanges import QueueEvents

PREFETCH = 20


@pytest.fixture
def three(broker, tmp_path):
    """Three listener processes consuming one queue; killed on the way out whatever happens."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    app = Listener(name, broker_url=broker.url, declare_exchanges=True)
    app.add_handler(lambda m, c: None, QueueEvents({"exchangePrefix": broker.prefix}).taskCompleted, name="h")
    app.declare()
    broker.forget_listener(app)
    with Processes(tmp_path, broker_url=broker.url, name=name, prefix=broker.prefix, sleep=0.004,
                   concurrency=4, prefetch=PREFETCH, grace=10) as processes:
        for _ in range(3):
            processes.spawn()
        wait_until(lambda: queue_counts(broker.url, app.queue_name)[1] == 3, 20, "three consumers")
        yield app.queue_name, processes


def publish(broker: Broker, count: int) -> list[str]:
    tasks = [uuid.uuid4().hex[:22] for _ in range(count)]
    publish_tasks(broker.url, broker.exchange("task-completed"), tasks, GROUP, task_key, task_status)
    return tasks


def distinct(processes: Processes) -> int:
    return len({r.task_id for r in read_records(*(p.out for p in processes.all))})


def stop_all(processes: Processes) -> None:
    for process in processes.all:
        process.signal(signal.SIGTERM)
    for process in processes.all:
        if process.popen.returncode is None or process.popen.returncode >= 0:
            assert process.wait(20) == 0, process.log_text()[-2000:]


def test_three_processes_share_the_queue_exactly_once(broker, three):
    queue, processes = three
    tasks = publish(broker, 3000)
    wait_until(lambda: distinct(processes) == len(tasks), 60, "every message handled", interval=0.1)
    stop_all(processes)
    records = read_records(*(p.out for p in processes.all))
    result = tally(tasks, [(r.task_id, r.redelivered) for r in records])
    shares = Counter(r.pid for r in records)
    print(f"\nSCALEOUT {result.line('3 processes, no fault')} shares={sorted(shares.values())}")
    assert result.lost == 0 and result.duplicates == 0
    assert len(shares) == 3 and all(n > 0 for n in shares.values())  # everyone got work
    assert queue_counts(broker.url, queue) == (0, 0)


def test_a_process_killed_mid_stream_loses_nothing(broker, three):
    queue, processes = three
    tasks = publish(broker, 3000)
    victim = processes.all[0]
    wait_until(lambda: distinct(processes) >= 1000 and victim.records(), 60, "the stream under way", interval=0.01)
    victim.popen.send_signal(signal.SIGKILL)
    assert victim.wait(10) == -signal.SIGKILL
    at_kill = distinct(processes)
    wait_until(lambda: distinct(processes) == len(tasks), 60, "every message handled", interval=0.1)
    stop_all(processes)
    records = read_records(*(p.out for p in processes.all))
    result = tally(tasks, [(r.task_id, r.redelivered) for r in records])
    print(f"\nSCALEOUT {result.line('3 processes, one SIGKILLed')} killed_after={at_kill} "
          f"killed_handled={len(victim.records())} redelivered_to_others="
          f"{sum(r.redelivered for r in records if r.pid != victim.pid)}")
    assert result.lost == 0
    assert result.duplicates <= PREFETCH  # at most the killed process's unacked window
    redelivered = sum(r.redelivered for r in records if r.pid != victim.pid)
    assert redelivered >= 1  # the killed process held unacked messages: the others got them back
    assert result.duplicates_not_redelivered == 0
    counts = Counter(r.task_id for r in records)
    duplicated = {task for task, n in counts.items() if n > 1}
    assert all(r.redelivered for r in records if r.task_id in duplicated and r.pid != victim.pid)
    assert queue_counts(broker.url, queue) == (0, 0)
