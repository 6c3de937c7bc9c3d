"""Benchmark: worker processes for a CPU-bound handler, ``tclisten run TARGET --workers N``.

Every handler burns 1 ms of CPU (a busy loop on ``time.thread_time``), so one process tops out
near 1 / (1 ms + tclisten's own cost per message) and a second process on the second core
should nearly double it.  Each candidate is the real command, ``python -m tclisten run
target.py --workers N --broker-url ...``, started on a queue holding the pre-published
messages.  Each worker holds its first message until every worker has one (a start line:
process start-up and connecting are not measured, nor a worker running alone before the
other is up), then writes how many messages it handled and the monotonic times of its first
and last one (``pwrite`` of one fixed-size record per message, into a file of its own); the
bench stops the command with SIGTERM once all were handled.  Throughput is the messages over
the span from the start line to the last message handled.  Prefetch 50, so the broker's split between the workers stays even to
the end.  Target: >= 1.7x at 2 workers vs 1, on this machine's 2 cores (the broker shares them).

>>> CANDIDATES
('workers-1', 'workers-2')
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import common

CANDIDATES = ("workers-1", "workers-2")
BASELINE = "workers-1"
CPU_SECONDS = 0.001
PREFETCH = 50
TARGET = 1.7

TARGET_SCRIPT = '''
import os, struct, time
from tclisten import Listener
from tclisten.exchanges import QueueEvents

app = Listener({name!r}, declare_exchanges=True, prefetch={prefetch})
STATS = {stats!r}
CPU = {cpu!r}
RECORD = struct.Struct("<qdd")
state = {{"fd": None, "count": 0, "first": 0.0}}


def burn(message, ctx):
    message.body["status"]["taskId"]
    end = time.thread_time() + CPU
    while time.thread_time() < end:
        pass
    if state["fd"] is None:  # the start line: every worker holds its first message until all have one
        open(os.path.join(STATS, f"ready-{{os.getpid()}}"), "w").close()
        while not os.path.exists(os.path.join(STATS, "go")):
            time.sleep(0.001)
        state["fd"] = os.open(os.path.join(STATS, str(os.getpid())), os.O_CREAT | os.O_WRONLY, 0o644)
        state["first"] = time.monotonic()
    now = time.monotonic()
    state["count"] += 1
    os.pwrite(state["fd"], RECORD.pack(state["count"], state["first"], now), 0)


completed = QueueEvents({{"exchangePrefix": {prefix!r}}}).taskCompleted
app.add_handler(burn, completed, provisionerId={prov_a!r}, name="a")
app.add_handler(burn, completed, taskGroupId={group!r}, name="b")
app.add_handler(burn, completed, route={route!r}, name="c")
'''


def read_stats(folder: Path) -> list[tuple[int, float, float]]:
    import struct

    record = struct.Struct("<qdd")
    out = []
    for path in folder.iterdir():
        if not path.name.isdigit():
            continue
        data = path.read_bytes()
        if len(data) >= record.size:
            out.append(record.unpack_from(data))
    return out


class Setup:
    """One listener name and queue for every round; a target script in a temp folder."""

    def __init__(self) -> None:
        self.name = f"bench-workers-{uuid.uuid4().hex[:8]}"
        self.queue = f"queue/{common.BROKER_USER}/{self.name}"
        self.folder = Path(tempfile.mkdtemp(prefix="tclisten-bench-workers-"))
        self.target = self.folder / "target.py"

    def write_target(self, stats: Path) -> None:
        self.target.write_text(TARGET_SCRIPT.format(
            name=self.name, prefetch=PREFETCH, stats=str(stats), cpu=CPU_SECONDS, prefix=common.EXCHANGE_PREFIX,
            prov_a=common.PROVISIONER_A, group=common.GROUP_G, route=f"{common.INDEX_ROUTE}.#"))

    def declare(self) -> None:
        from bench import tclisten_adapter

        tclisten_adapter.declare(self.queue)

    def delete(self) -> None:
        import shutil

        from bench import tclisten_adapter

        try:
            common.retrying(tclisten_adapter.delete, self.queue)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def run_one(setup: Setup, workers: int, messages: list[common.BenchMessage], timeout: float = 300.0) -> dict[str, Any]:
    """Publish ``messages``, run the command with ``workers`` processes until all are handled."""
    stats = setup.folder / f"stats-{workers}-{uuid.uuid4().hex[:6]}"
    stats.mkdir()
    setup.write_target(stats)
    common.purge(setup.queue)
    common.publish(messages, [setup.queue])
    count = len(messages)
    # What the machine does without us (the broker idle, other people's work): read over a
    # second before the command starts, so the report can say how much of the 2 cores was free.
    before = common.cpu_jiffies()
    time.sleep(1.0)
    background = common.busy_share(before, common.cpu_jiffies())
    log = (setup.folder / f"stderr-{workers}.log").open("w")
    # The tclisten next to this bench (a clean checkout of a commit, say), not whatever is installed.
    env = dict(os.environ, TCLISTEN_LOG_LEVEL="WARNING",
               PYTHONPATH=os.pathsep.join(p for p in (str(common.ROOT), os.environ.get("PYTHONPATH", "")) if p))
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "tclisten", "run", str(setup.target), "--workers", str(workers),
                             "--broker-url", common.consume_url()], cwd=setup.folder, env=env,
                            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    try:
        while len(list(stats.glob("ready-*"))) < workers:
            if proc.poll() is not None or time.monotonic() - started > timeout:
                raise RuntimeError(f"--workers {workers}: not every worker got a message (exit status "
                                   f"{proc.returncode}): {(setup.folder / f'stderr-{workers}.log').read_text()[-2000:]}")
            time.sleep(0.01)
        (stats / "go").touch()
        busy0, broker0 = common.cpu_jiffies(), common.broker_cpu_seconds()
        while True:
            records = read_stats(stats)
            if sum(r[0] for r in records) >= count:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"tclisten run --workers {workers} exited with {proc.returncode}: "
                                   f"{(setup.folder / f'stderr-{workers}.log').read_text()[-2000:]}")
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"--workers {workers}: {sum(r[0] for r in records)} of {count} handled "
                                   f"after {timeout:.0f} s")
            time.sleep(0.02)
        busy1, broker1 = common.cpu_jiffies(), common.broker_cpu_seconds()
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    first = min(r[1] for r in records)
    last = max(r[2] for r in records)
    span = last - first
    broker = (broker1 - broker0) / span if broker0 is not None and broker1 is not None and span > 0 else None
    return {"messages": count, "seconds": span, "machine_busy": common.busy_share(busy0, busy1),
            "background_busy": background,
            "broker_cores": broker, "load": common.load(), "msg_per_s": (count - 1) / span if span > 0 else float("nan"),
            "processes": len(records), "per_process": sorted(r[0] for r in records), "exit_status": status,
            "left_in_queue": common.depth(setup.queue)}
