"""What a deploy, a hung handler and a poison message do to a listener process: real
subprocesses (``tests/support/faultkit.py``) getting real signals or really dying, on a broker
node of the tests' own, checked by the queue's ready and unacked counts afterwards.

Each scenario runs at concurrency 1 (handlers on the connection's thread) and 4 (a pool).
"""

from __future__ import annotations

import signal
import time
import uuid

import pytest
from kombu import Connection, Exchange, Producer

from support.faultkit import Processes, tally, wait_until
from support.listener_kit import GROUP, slug, task_key, task_status
from tclisten.app import EXIT_UNFINISHED, Listener
from tclisten.exchanges import QueueEvents

CONCURRENCY = [1, 4]


class Setup:
    """One listener name on the private node, its queue declared, and its processes."""

    def __init__(self, node, processes: Processes, name: str, prefix: str) -> None:
        self.node = node
        self.processes = processes
        self.name = name
        self.prefix = prefix
        self.queue = f"queue/guest/{name}"

    def publish(self, count: int, first: str | None = None) -> list[str]:
        tasks = ([first] if first else []) + [slug() for _ in range(count - (1 if first else 0))]
        with Connection(self.node.url, transport_options={"confirm_publish": True}) as conn:
            producer = Producer(conn.channel())
            exchange = self.prefix + "task-completed"
            for task in tasks:
                producer.publish(task_status(task, GROUP), exchange=exchange, routing_key=task_key(task, GROUP),
                                 serializer="json", delivery_mode=2)
        return tasks

    def counts(self) -> tuple[int, int]:
        """(ready, unacked) of the main queue, as the broker sees them."""
        return self.node.queue_counts(self.queue)

    def parked(self) -> int:
        return self.node.queue_counts(self.queue + "/parked")[0]

    def consuming(self) -> None:
        wait_until(lambda: self.node.queues("/", "consumers").get(self.queue, {}).get("consumers", 0) > 0,
                   30, f"a consumer on {self.queue}")


@pytest.fixture
def setup(private_node, tmp_path):
    name = f"deploy-{uuid.uuid4().hex[:8]}"
    prefix = f"exchange/{name}/v1/"
    app = Listener(name, broker_url=private_node.url, declare_exchanges=True,
                   retry={"max_attempts": 5, "delay": 0.2, "backoff": 1})
    app.add_handler(lambda m, c: None, QueueEvents({"exchangePrefix": prefix}).taskCompleted, name="h")
    app.declare()
    with Processes(tmp_path, broker_url=private_node.url, name=name, prefix=prefix, retry_delay=0.2) as processes:
        yield Setup(private_node, processes, name, prefix)
    with Connection(private_node.url) as conn, conn.channel() as channel:
        for queue in app.queue_names():
            channel.queue_delete(queue)
        channel.exchange_delete(app.topology.exchange.name)
        Exchange(prefix + "task-completed")(channel).delete()


def drain(setup: Setup, expected: int) -> list:
    """One more listener until ``expected`` more messages were handled; its records."""
    last = setup.processes.spawn(sleep=0.0, concurrency=4)
    wait_until(lambda: len(last.records()) >= expected, 60, f"{expected} messages drained")
    last.signal(signal.SIGTERM)
    assert last.wait(20) == 0
    return last.records()


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_a_stop_within_grace_finishes_acks_and_returns_the_rest_at_once(setup, concurrency):
    tasks = setup.publish(20)
    first = setup.processes.spawn(sleep=2.0, concurrency=concurrency, prefetch=10, grace=20)
    wait_until(lambda: len(first.started_ids()) >= concurrency, 30, "handlers running")
    running = len(first.started_ids())
    first.signal(signal.SIGTERM)
    # the unstarted prefetched deliveries go back at once, while the running handlers still run
    wait_until(lambda: setup.counts() == (20 - running, running), 5, "unstarted deliveries returned at once")
    assert first.alive()
    assert first.wait(20) == 0, first.log_text()[-3000:]
    done = first.records()
    assert sorted(r.task_id for r in done) == sorted(first.started_ids())  # none started after the signal
    assert len(done) == running
    assert setup.counts() == (20 - running, 0)  # what finished was acked, nothing else
    assert "nothing left unfinished" in first.log_text()
    rest = drain(setup, 20 - running)
    result = tally(tasks, [(r.task_id, r.redelivered) for r in done + rest])
    assert (result.lost, result.duplicates) == (0, 0)


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_a_stop_past_grace_exits_promptly_leaving_the_running_to_the_broker(setup, concurrency):
    tasks = setup.publish(10)
    first = setup.processes.spawn(sleep=60, concurrency=concurrency, prefetch=4, grace=1)
    wait_until(lambda: len(first.started_ids()) >= concurrency, 30, "handlers running")
    sent = time.monotonic()
    first.signal(signal.SIGTERM)
    assert first.wait(20) == EXIT_UNFINISHED, first.log_text()[-3000:]
    took = time.monotonic() - sent
    assert took < 1 + 2.0, f"exited {took:.1f} s after the signal (grace 1 s)"
    assert first.records() == []
    assert setup.counts() == (10, 0)  # the running ones redelivered, nothing lost, nothing acked
    rest = drain(setup, 10)
    result = tally(tasks, [(r.task_id, r.redelivered) for r in rest])
    assert (result.lost, result.duplicates) == (0, 0)


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_a_second_signal_stops_at_once(setup, concurrency):
    setup.publish(10)
    first = setup.processes.spawn(sleep=60, concurrency=concurrency, prefetch=4, grace=60)
    wait_until(lambda: len(first.started_ids()) >= concurrency, 30, "handlers running")
    first.signal(signal.SIGTERM)
    time.sleep(0.5)
    assert first.alive()  # waiting for its handlers: grace 60 s
    sent = time.monotonic()
    first.signal(signal.SIGTERM)
    assert first.wait(20) == EXIT_UNFINISHED, first.log_text()[-3000:]
    assert time.monotonic() - sent < 2.0
    assert "stopping at once" in first.log_text()
    assert len(first.started_ids()) == concurrency  # the second signal started nothing either
    assert setup.counts() == (10, 0)


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_finished_work_is_acked_within_a_second_behind_a_hung_handler(setup, concurrency):
    """One handler hangs; the messages that finished after it are acked individually within
    about a second, so a stop returns only the hung one (no finished work runs twice)."""
    hung = slug()
    count = 12 if concurrency > 1 else 5
    # at concurrency 1 the hung message comes last: the others finished before it, and their
    # acks (a batch not yet full) are sent by the watchdog while it hangs
    if concurrency == 1:
        setup.publish(count - 1)
        setup.publish(1, first=hung)
    else:
        setup.publish(count, first=hung)
    first = setup.processes.spawn(concurrency=concurrency, prefetch=20, grace=1, hang_on=hung)
    wait_until(lambda: len(first.records()) == count - 1, 30, "every other message handled")
    wait_until(lambda: setup.counts() == (0, 1), 3, "only the hung delivery unacked")
    first.signal(signal.SIGTERM)
    assert first.wait(20) == EXIT_UNFINISHED
    assert setup.counts() == (1, 0)
    rest = drain(setup, 1)
    assert [r.task_id for r in rest] == [hung]


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_a_hung_handler_times_out_is_retried_then_parked_and_the_loop_goes_on(setup, concurrency):
    hung = slug()
    tasks = setup.publish(8, first=hung)
    first = setup.processes.spawn(concurrency=concurrency, prefetch=10, timeout=1, hang_on=hung, max_attempts=2)
    wait_until(lambda: setup.parked() == 1, 30, "the hung message parked")
    wait_until(lambda: len(first.records()) == 7, 10, "every other message handled")
    assert first.alive()
    log = first.log_text()
    assert "reached its time limit (1 s)" in log
    assert log.count("timed out after 1 s") >= 2  # both attempts
    first.signal(signal.SIGTERM)
    assert first.wait(20) == 0
    assert setup.counts() == (0, 0)
    assert sorted(r.task_id for r in first.records()) == sorted(tasks[1:])


def test_a_worker_stuck_in_a_blocking_call_is_abandoned_and_replaced(setup):
    blocked = slug()
    setup.publish(6, first=blocked)
    first = setup.processes.spawn(concurrency=2, prefetch=10, timeout=1, block_on=blocked, max_attempts=1)
    wait_until(lambda: setup.parked() == 1, 30, "the blocked message parked")
    wait_until(lambda: len(first.records()) == 5, 10, "every other message handled")
    assert "abandoning its thread" in first.log_text()
    more = setup.publish(6)  # two workers still: the replacement takes its share
    wait_until(lambda: len(first.records()) == 11, 20, "more messages handled")
    first.signal(signal.SIGTERM)
    assert first.wait(20) == 0
    assert {r.task_id for r in first.records()} >= set(more)


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_a_message_that_kills_its_process_ends_parked(setup, concurrency, tmp_path):
    """A supervisor restarts the process each time it dies; the poison message is counted
    as an attempt on every redelivery and parked after max_attempts deliveries."""
    poison = slug()
    tasks = setup.publish(10, first=poison)
    shared = tmp_path / "handled-all.txt"
    deaths = 0
    for _ in range(8):
        process = setup.processes.spawn(concurrency=concurrency, prefetch=5, exit_on=poison, max_attempts=3,
                                        out=shared)
        wait_until(lambda: not process.alive() or (setup.parked() == 1 and setup.counts() == (0, 0)), 60,
                   "the listener to die or to finish")
        if process.alive():
            process.signal(signal.SIGTERM)
            assert process.wait(20) == 0
            break
        assert process.wait(5) == 3  # os._exit(3) in the handler
        deaths += 1
    assert deaths <= 3
    assert setup.parked() == 1
    handled = process.records()
    assert {r.task_id for r in handled} == set(tasks[1:])
    (parked,) = Listener(setup.name, broker_url=setup.node.url).parked()
    assert parked.task_id == poison
    assert parked.reason == "delivered 3 times without an outcome (did the process die?)"
