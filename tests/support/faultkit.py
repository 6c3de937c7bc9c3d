"""Fault injection for listener tests: a TCP proxy that can cut the broker connection, fast
publishing, broker restarts, and listener subprocesses that record what they handled.

Run as a script, it is the small listener those subprocesses run::

    python tests/support/faultkit.py --broker-url amqp://... --name test-x --prefix exchange/test-x/v1/ \
        --out handled.txt [--sleep 0.01] [--concurrency 4] [--prefetch 50] [--grace 30]

Every handled message appends ``<taskId> <redelivered 0|1> <pid>`` to ``--out`` (one
``O_APPEND`` write per line, so threads and processes never interleave), after the handler's
``--sleep``; ``--started`` names a file that gets ``<taskId>`` when a handler starts.

Only the standard library and kombu are imported at module level, so the script starts fast
and never needs the test directory on its path.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parents[2]
BROKER = ("127.0.0.1", 5672)


# -- the proxy ------------------------------------------------------------------------------

class _Pair:
    """One proxied connection: the client's socket and ours to the broker."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self._open_pumps = 2
        self._lock = threading.Lock()

    def shutdown(self) -> None:
        # shutdown (not close) wakes the pump threads blocked in recv; they close the sockets,
        # so no descriptor is closed under another thread's feet.
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def pump_done(self) -> bool:
        with self._lock:
            self._open_pumps -= 1
            return self._open_pumps == 0


class FaultProxy:
    """A threaded loopback TCP proxy in front of the broker.

    ``cut()`` drops every open connection at once (both sides see the connection end);
    ``refuse(True)`` makes new connections fail until ``refuse(False)``.

    >>> with FaultProxy() as proxy:            # doctest: +SKIP
    ...     app = Listener("x", broker_url=proxy.url)
    ...     proxy.cut()
    """

    def __init__(self, upstream: tuple[str, int] = BROKER) -> None:
        self.upstream = upstream
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self._server.settimeout(0.1)
        self.port = self._server.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._refusing = False
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self.accepted = 0
        self.refused = 0
        self.cuts = 0
        self._acceptor = threading.Thread(target=self._accept_loop, name="faultproxy-accept", daemon=True)

    def url(self, user: str = "guest", password: str = "guest") -> str:
        return f"amqp://{user}:{password}@127.0.0.1:{self.port}//"

    def start(self) -> "FaultProxy":
        self._acceptor.start()
        return self

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def cut(self) -> int:
        """Drop every open connection; returns how many were cut."""
        with self._lock:
            pairs = list(self._pairs)
            self.cuts += 1
        for pair in pairs:
            pair.shutdown()
        return len(pairs)

    def refuse(self, on: bool = True) -> None:
        self._refusing = on

    def close(self) -> None:
        self._closed.set()
        self.cut()
        if self._acceptor.is_alive():
            self._acceptor.join(5)
        self._server.close()
        for thread in list(self._threads):
            thread.join(5)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self._refusing:
                self.refused += 1
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                self.refused += 1
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.add(pair)
                self.accepted += 1
            for src, dst, name in ((client, upstream, "up"), (upstream, client, "down")):
                thread = threading.Thread(target=self._pump, args=(pair, src, dst), name=f"faultproxy-{name}",
                                          daemon=True)
                thread.start()
                self._threads.append(thread)
            self._threads = [t for t in self._threads if t.is_alive()]

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            pair.shutdown()
            if pair.pump_done():
                with self._lock:
                    self._pairs.discard(pair)
                pair.client.close()
                pair.upstream.close()


# -- publishing and counting -------------------------------------------------------------

def publish_tasks(url: str, exchange: str, task_ids: Iterable[str], group: str,
                  key: Callable[[str, str], str], body: Callable[[str, str], dict]) -> int:
    """Publish one persistent Taskcluster-style message per taskId, as fast as the broker
    takes them (no publisher confirms: callers check the queue's count instead)."""
    from kombu import Connection, Producer

    sent = 0
    with Connection(url) as conn:
        producer = Producer(conn.channel())
        for task_id in task_ids:
            producer.publish(json.dumps(body(task_id, group)).encode(), exchange=exchange,
                             routing_key=key(task_id, group), content_type="application/json",
                             content_encoding="utf-8", delivery_mode=2, retry=False)
            sent += 1
    return sent


def queue_counts(url: str, queue: str) -> tuple[int, int]:
    """(ready messages, consumers) of a queue, on a fresh connection; (0, 0) if it is gone."""
    from kombu import Connection

    with Connection(url, connect_timeout=5) as conn:
        with conn.channel() as channel:
            try:
                ok = channel.queue_declare(queue, passive=True)
            except conn.channel_errors:
                return 0, 0
            return ok.message_count, ok.consumer_count


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it is truthy; AssertionError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def delete_entities(url: str, queues: Iterable[str] = (), exchanges: Iterable[str] = ()) -> None:
    """Delete test queues and exchanges on a fresh connection, ignoring the missing ones."""
    from kombu import Connection

    with Connection(url, connect_timeout=5) as conn:
        for method, names in (("queue_delete", queues), ("exchange_delete", exchanges)):
            for name in names:
                with conn.channel() as channel:
                    try:
                        getattr(channel, method)(name)
                    except conn.channel_errors:
                        pass


def close_broker(broker: Any) -> None:
    """``listener_kit.Broker.close()``, and when its connection died (a broker restart, a cut),
    the same cleanup again on a fresh connection, so a failed test leaves nothing behind."""
    try:
        broker.close()
    except Exception:
        try:
            broker.conn.release()
        except Exception:
            pass
        wait_for_broker(broker.url)
        delete_entities(broker.url, broker.queues, broker.exchanges)


# -- the broker itself ---------------------------------------------------------------------

def broker_accepts(url: str) -> bool:
    """True when the broker takes an AMQP login and a channel."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
            with conn.channel():
                return True
    except Exception:
        return False


def wait_for_broker(url: str, timeout: float = 60) -> None:
    wait_until(lambda: broker_accepts(url), timeout, "the broker to accept connections", interval=0.25)


# -- listener subprocesses -------------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    task_id: str
    redelivered: bool
    pid: int


def read_records(*paths: Path) -> list[Record]:
    records = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            task_id, redelivered, pid = line.split()
            records.append(Record(task_id, redelivered == "1", int(pid)))
    return records


def read_lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


@dataclass
class Tally:
    """What a fault scenario did to a set of messages."""

    published: int
    handled: int  # handler runs that finished
    distinct: int
    lost: int
    duplicates: int  # handled - distinct
    duplicates_not_redelivered: int  # second first-deliveries of one taskId: must be 0

    def line(self, scenario: str) -> str:
        return (f"{scenario}: published={self.published} handled={self.handled} distinct={self.distinct} "
                f"lost={self.lost} duplicates={self.duplicates}")


def tally(expected: Iterable[str], handled: Iterable[tuple[str, bool]]) -> Tally:
    """Count lost and duplicated messages; ``handled`` holds (taskId, redelivered) pairs."""
    expected = set(expected)
    handled = list(handled)
    ids = Counter(task_id for task_id, _ in handled)
    fresh = Counter(task_id for task_id, redelivered in handled if not redelivered)
    return Tally(published=len(expected), handled=len(handled), distinct=len(ids),
                 lost=len(expected - set(ids)), duplicates=len(handled) - len(ids),
                 duplicates_not_redelivered=sum(n - 1 for n in fresh.values() if n > 1))


class ListenerProcess:
    """One listener subprocess (this file run as a script)."""

    def __init__(self, directory: Path, index: int, *, broker_url: str, name: str, prefix: str,
                 sleep: float = 0.0, concurrency: int = 4, prefetch: int = 50, grace: float = 30.0,
                 out: Path | None = None, **more: Any) -> None:
        """``more``: further options of the script (``timeout=``, ``hang_on=``, ``exit_on=``,
        ``max_attempts=``, ``retry_delay=``); ``out``: a record file shared by several runs."""
        self.out = out or directory / f"handled-{index}.txt"
        self.started = directory / f"started-{index}.txt"
        self.log = directory / f"listener-{index}.log"
        self.args = [sys.executable, str(Path(__file__).resolve()), "--broker-url", broker_url, "--name", name,
                     "--prefix", prefix, "--out", str(self.out), "--started", str(self.started),
                     "--sleep", str(sleep), "--concurrency", str(concurrency), "--prefetch", str(prefetch),
                     "--grace", str(grace)]
        for option, value in more.items():
            if value is not None:
                self.args += ["--" + option.replace("_", "-"), str(value)]
        self.popen: subprocess.Popen | None = None

    def start(self) -> "ListenerProcess":
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with open(self.log, "wb") as log:
            self.popen = subprocess.Popen(self.args, cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            self.popen.send_signal(signum)

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"listener {self.pid} still running after {timeout} s; log:\n"
                                 f"{self.log_text()[-3000:]}") from None

    def kill(self) -> None:
        if self.alive():
            self.popen.kill()
            self.popen.wait(10)

    def records(self) -> list[Record]:
        return read_records(self.out)

    def started_ids(self) -> list[str]:
        return read_lines(self.started)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Processes:
    """Starts listener subprocesses and kills whatever is still running on exit, even when the
    test failed."""

    def __init__(self, directory: Path, **defaults: Any) -> None:
        self.directory = directory
        self.defaults = defaults
        self.all: list[ListenerProcess] = []

    def spawn(self, **options: Any) -> ListenerProcess:
        process = ListenerProcess(self.directory, len(self.all), **{**self.defaults, **options})
        self.all.append(process)
        return process.start()

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *exc: Any) -> None:
        for process in self.all:
            process.kill()


# -- the script ---------------------------------------------------------------------------------

def _append(path: str | None) -> Callable[[str], None]:
    if not path:
        return lambda line: None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    return lambda line: os.write(fd, (line + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    import logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker-url", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--started")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--prefetch", type=int, default=50)
    parser.add_argument("--grace", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=None, help="handler_timeout (default: none)")
    parser.add_argument("--hang-on", default=None, help="taskId whose handler hangs (short sleeps, for an hour)")
    parser.add_argument("--block-on", default=None, help="taskId whose handler blocks in one hour-long sleep")
    parser.add_argument("--exit-on", default=None, help="taskId whose handler kills the process (os._exit)")
    parser.add_argument("--max-attempts", type=int, default=5)
    parser.add_argument("--retry-delay", type=float, default=0.2)
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(threadName)s %(name)s: %(message)s")

    from tclisten.app import Listener
    from tclisten.exchanges import QueueEvents

    done = _append(options.out)
    started = _append(options.started)
    pid = os.getpid()
    app = Listener(options.name, broker_url=options.broker_url, declare_exchanges=True,
                   concurrency=options.concurrency, prefetch=options.prefetch, grace_period=options.grace,
                   handler_timeout=options.timeout,
                   retry={"max_attempts": options.max_attempts, "delay": options.retry_delay, "backoff": 1})

    @app.on(QueueEvents({"exchangePrefix": options.prefix}).taskCompleted)
    def record(message: Any, ctx: Any) -> None:
        task_id = message.routing.taskId
        started(task_id)
        if task_id == options.exit_on:
            os._exit(3)  # a segfault, an OOM kill: no cleanup, nothing acked
        if task_id == options.hang_on:
            for _ in range(72_000):  # a service that never answers, polled
                time.sleep(0.05)
        if task_id == options.block_on:
            time.sleep(3600)  # one blocking call: a worker thread cannot be interrupted in it
        if options.sleep:
            time.sleep(options.sleep)
        done(f"{task_id} {int(message.redelivered)} {pid}")

    summary = app.run()
    logging.getLogger("faultkit").info("exiting: %s", summary)
    return summary.exit_status


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())


# -- a listener in a thread ---------------------------------------------------------------------

class Running:
    """``with Running(app):`` runs ``app`` in a thread for the block, then stops it and waits;
    an error of ``run()`` is raised at the end of the block."""

    def __init__(self, app: Any, join_timeout: float = 30) -> None:
        self.app = app
        self.join_timeout = join_timeout
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._target, name="listener", daemon=True)

    def _target(self) -> None:
        try:
            self.app.run()
        except BaseException as exc:  # raised in the test's thread on exit
            self.errors.append(exc)

    def __enter__(self) -> "Running":
        self.thread.start()
        return self

    def check(self) -> None:
        """Raise now if the listener already failed."""
        if self.errors:
            raise self.errors[0]

    def __exit__(self, *exc: Any) -> None:
        self.app.stop()
        self.thread.join(self.join_timeout)
        if exc[0] is None:
            self.check()
            if self.thread.is_alive():
                raise AssertionError("listener did not stop")
