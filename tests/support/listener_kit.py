"""Helpers for tests that run listeners on the real broker: Taskcluster-style publishing,
running a listener in a thread until a condition holds, and cleaning up."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any, Callable

from kombu import Connection, Exchange, Producer

from support.env import BROKER_URL

GROUP = "fWxWbBvDQS2Q4XXc9U-Hnw"


def slug() -> str:
    """A fresh 22-character id (the shape of a taskId)."""
    return uuid.uuid4().hex[:22]


def task_status(task_id: str, group: str, state: str = "completed") -> dict:
    now = "2026-11-29T12:00:00.000Z"
    return {
        "status": {
            "taskId": task_id, "provisionerId": "proj-test", "workerType": "linux", "schedulerId": "-",
            "taskGroupId": group, "deadline": now, "expires": now, "retriesLeft": 5, "state": state,
            "runs": [{"runId": 0, "state": state, "reasonCreated": "scheduled", "reasonResolved": state,
                      "workerGroup": "wg", "workerId": "w1", "takenUntil": now, "scheduled": now,
                      "started": now, "resolved": now}],
        },
        "runId": 0, "workerGroup": "wg", "workerId": "w1", "task": {"tags": {}}, "version": 1,
    }


def task_key(task_id: str, group: str, run_id: str = "0") -> str:
    return f"primary.{task_id}.{run_id}.wg.w1.proj-test.linux.-.{group}._"


class Broker:
    """Publishes the way Taskcluster's queue does and removes what the tests created."""

    def __init__(self, url: str = BROKER_URL) -> None:
        self.url = url
        self.prefix = f"exchange/test-{uuid.uuid4().hex[:10]}/v1/"
        self.conn = Connection(url, transport_options={"confirm_publish": True})
        self.channel = self.conn.channel()
        self.exchanges: set[str] = set()
        self.queues: set[str] = set()

    def exchange(self, short: str) -> str:
        name = self.prefix + short
        if name not in self.exchanges:
            Exchange(name, "topic", durable=True)(self.channel).declare()
            self.exchanges.add(name)
        return name

    def publish(self, short: str, routing_key: str, body: Any, routes: tuple[str, ...] = (),
                raw: bytes | None = None) -> None:
        exchange = self.exchange(short)
        headers = {"CC": [f"route.{r}" for r in routes]} if routes else {}
        payload = raw if raw is not None else json.dumps(body).encode()
        Producer(self.channel).publish(payload, exchange=exchange, routing_key=routing_key, headers=headers,
                                       content_type="application/json", content_encoding="utf-8",
                                       delivery_mode=2, retry=False)

    def count(self, queue: str) -> int:
        """Messages ready in a queue (0 when it does not exist)."""
        with self.conn.channel() as channel:
            try:
                return channel.queue_declare(queue, passive=True).message_count
            except self.conn.channel_errors:
                return 0

    def forget_listener(self, app: Any) -> None:
        """Delete the listener's queues and exchange (as its topology names them) at the end."""
        self.queues.update(app.queue_names())
        self.exchanges.add(app.topology.exchange.name)

    def close(self) -> None:
        for queue in self.queues:
            with self.conn.channel() as channel:
                try:
                    channel.queue_delete(queue)
                except self.conn.channel_errors:
                    pass
        for exchange in self.exchanges:
            with self.conn.channel() as channel:
                try:
                    channel.exchange_delete(exchange)
                except self.conn.channel_errors:
                    pass
        self.conn.release()


def run_listener(app: Any, until: Callable[[], bool], timeout: float = 20.0) -> None:
    """Run ``app`` in a thread until ``until()`` holds, then stop it and wait for it."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            app.run()
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not until():
            if errors or not thread.is_alive():
                break
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            time.sleep(0.02)
    finally:
        app.stop()
        thread.join(30)
    if errors:
        raise errors[0]
    assert not thread.is_alive(), "listener did not stop"
