"""Benchmark 3: Hawk-signed ``Queue.task`` calls, tclisten's client vs the official one.

The server runs in a process of its own (so its CPU is not the clients'): tclisten's
``FakeTaskcluster`` when it can be imported, else ``bench/hawkserver.py``; both verify Hawk
with mohawk on every request.  Each client runs in a fresh process, makes a few warm-up
calls, then ``calls`` sequential ``queue.task(taskId)`` calls; it reports calls per second
and its own CPU per call (``time.process_time``, this process only).

>>> CANDIDATES
('taskcluster', 'tclisten')
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from typing import Any

from bench import hawkserver

logger = logging.getLogger(__name__)

CANDIDATES = ("taskcluster", "tclisten")
BASELINE = "taskcluster"
TASK_ID = "fQGgk0ZbTSOcE6gWAqqH7g"
CREDENTIALS = {"clientId": hawkserver.CLIENT_ID, "accessToken": hawkserver.ACCESS_TOKEN}


# --------------------------------------------------------------------------------------------
# the server process


def _serve(conn: Any, prefer_fake: bool) -> None:
    """Child: start a server, send (port, kind), serve until killed by the parent."""
    if prefer_fake:
        try:
            from tclisten.testing.fakeserver import FakeTaskcluster

            fake = FakeTaskcluster(clients={hawkserver.CLIENT_ID: {"accessToken": hawkserver.ACCESS_TOKEN,
                                                                    "scopes": ["*"]}})
            fake.respond("queue", "task", hawkserver.TASK)
            fake.start()
        except Exception as exc:  # fall back to the bench's own server, and say so
            logger.warning("FakeTaskcluster unusable (%s); using bench/hawkserver.py", exc)
        else:
            conn.send((fake.port, "tclisten.testing.fakeserver.FakeTaskcluster"))
            while True:
                time.sleep(3600)
    server = hawkserver.serve(0)
    conn.send((server.server_address[1], "bench/hawkserver.py (ThreadingHTTPServer + mohawk.Receiver)"))
    server.serve_forever(poll_interval=0.5)


class Server:
    """The Hawk-verifying server in its own process: ``with Server() as s: s.root_url``."""

    def __init__(self, prefer_fake: bool = True) -> None:
        self.prefer_fake = prefer_fake
        self.kind = "?"
        self.root_url = ""
        self._proc: Any = None

    def __enter__(self) -> "Server":
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_serve, args=(child, self.prefer_fake), daemon=True)
        self._proc.start()
        child.close()
        if not parent.poll(60):
            self._proc.kill()
            raise RuntimeError("the REST bench server did not start in 60 s")
        port, self.kind = parent.recv()
        parent.close()
        self.root_url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: Any) -> None:
        self._proc.terminate()
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


# --------------------------------------------------------------------------------------------
# the clients (each runs in a fresh process)


def _client(candidate: str, root_url: str) -> Any:
    options = {"rootUrl": root_url, "credentials": dict(CREDENTIALS)}
    if candidate == "taskcluster":
        import taskcluster

        return taskcluster.Queue(options)
    if candidate == "tclisten":
        from tclisten.taskcluster.client import Queue

        return Queue(options)
    raise ValueError(f"unknown REST candidate {candidate!r}; choose from {CANDIDATES}")


def call_many(candidate: str, root_url: str, calls: int, warmup: int = 10) -> dict[str, Any]:
    """``calls`` sequential ``queue.task`` calls; wall time and this process's CPU."""
    for name in [n for n in os.environ if n.startswith("TASKCLUSTER_")]:
        del os.environ[name]  # both clients read these; the bench passes everything explicitly
    queue = _client(candidate, root_url)
    for _ in range(warmup):
        task = queue.task(TASK_ID)
    if task.get("taskGroupId") != hawkserver.TASK["taskGroupId"]:
        raise RuntimeError(f"{candidate}: unexpected answer {task!r}")
    t0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(calls):
        queue.task(TASK_ID)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"calls": calls, "seconds": wall, "calls_per_s": calls / wall, "cpu_ms_per_call": cpu / calls * 1e3}


def run_one(candidate: str, root_url: str, calls: int) -> dict[str, Any]:
    from bench import common

    return common.in_subprocess(call_many, candidate, root_url, calls, timeout=300)
