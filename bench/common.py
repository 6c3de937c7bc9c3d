"""Shared pieces of the benchmarks: messages, publishing, queues, subprocesses, statistics.

Everything here is plumbing the candidates share, so that each candidate of a benchmark reads
the same messages from the same kind of queue and is timed the same way.

>>> body = json.loads(make_messages(1)[0].body)
>>> body["status"]["state"]
'completed'
"""

from __future__ import annotations

import base64
import json
import logging
import multiprocessing
import os
import platform
import random
import socket
import statistics
import sys
import time
import traceback
import urllib.parse
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import amqp

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
BROKER_URL = os.environ.get("TCLISTEN_BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
#: Where the candidates consume from, when not ``BROKER_URL`` (the TLS benchmark: an
#: ``amqps://localhost:PORT`` listener of the same node, its CA in ``TCLISTEN_BENCH_CA``).
CONSUME_URL_VARIABLE = "TCLISTEN_BENCH_CONSUME_URL"
CA_VARIABLE = "TCLISTEN_BENCH_CA"


def _split(url: str) -> tuple[str, str, str, str]:
    parts = urllib.parse.urlsplit(url)
    default_port = 5671 if parts.scheme.endswith("amqps") else 5672
    return (f"{parts.hostname or '127.0.0.1'}:{parts.port or default_port}", urllib.parse.unquote(parts.username or "guest"),
            urllib.parse.unquote(parts.password or "guest"),
            urllib.parse.unquote(parts.path[1:]) if len(parts.path) > 1 else "/")


BROKER_HOST, BROKER_USER, BROKER_PASSWORD, BROKER_VHOST = _split(BROKER_URL)


def use_broker(url: str, consume_url: str | None = None, ca: str | None = None) -> dict[str, str | None]:
    """Point the bench (this process and the children it spawns from now on) at another
    broker: publishing, declaring and counting at ``url``, consuming at ``consume_url``
    (default: ``url``) trusting ``ca``.  Returns what to give back to :func:`restore_broker`."""
    global BROKER_URL, BROKER_HOST, BROKER_USER, BROKER_PASSWORD, BROKER_VHOST
    names = ("TCLISTEN_BENCH_BROKER_URL", CONSUME_URL_VARIABLE, CA_VARIABLE, "SSL_CERT_FILE")
    saved = {name: os.environ.get(name) for name in names}
    for name, value in zip(names, (url, consume_url, ca, ca)):
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    BROKER_URL = url
    BROKER_HOST, BROKER_USER, BROKER_PASSWORD, BROKER_VHOST = _split(url)
    return saved


def restore_broker(saved: dict[str, str | None]) -> None:
    url = saved.get("TCLISTEN_BENCH_BROKER_URL") or "amqp://guest:guest@127.0.0.1:5672//"
    use_broker(url)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def consume_url() -> str:
    """The URL candidates consume from (``BROKER_URL`` unless a TLS run set another)."""
    return os.environ.get(CONSUME_URL_VARIABLE) or BROKER_URL


def tls_options() -> dict[str, Any] | None:
    """py-amqp/kombu ``ssl=`` options for :func:`consume_url` (None: plain AMQP): the
    certificate is verified against the bench's own CA, host name included."""
    url = consume_url()
    if not urllib.parse.urlsplit(url).scheme.endswith("amqps"):
        return None
    import ssl

    return {"ca_certs": os.environ.get(CA_VARIABLE), "cert_reqs": ssl.CERT_REQUIRED,
            "server_hostname": urllib.parse.urlsplit(url).hostname}

#: The bench declares (and deletes) its own exchange, shaped like the queue's
#: ``exchange/taskcluster-queue/v1/``.  Unique per run (children inherit it through the
#: environment), so two runs at once, or a run and the quick test, never share one.
EXCHANGE_PREFIX = os.environ.setdefault("TCLISTEN_BENCH_EXCHANGE_PREFIX",
                                        f"exchange/tclisten-bench-{uuid.uuid4().hex[:8]}/v1/")
EXCHANGE = EXCHANGE_PREFIX + "task-completed"

#: The three dispatch bindings.  Each generated message matches exactly one of them, so the
#: number of handler calls equals the number of messages for every candidate.
PROVISIONER_A = "bench-prov-a"
PROVISIONER_B = "bench-prov-b"
GROUP_G = "BenchGroupGGGGGGGGGGGG"[:22]
INDEX_ROUTE = "index.bench"
BINDING_KEYS = (
    f"primary.*.*.*.*.{PROVISIONER_A}.*.*.*.#",       # provisionerId=bench-prov-a
    f"primary.*.*.*.*.*.*.*.{GROUP_G}.#",             # taskGroupId=G
    f"route.{INDEX_ROUTE}.#",                          # route="index.bench.#"
)


# --------------------------------------------------------------------------------------------
# messages


@dataclass(frozen=True)
class BenchMessage:
    """One pre-built Taskcluster task-completed message."""

    routing_key: str
    body: bytes
    cc: tuple[str, ...]


def slug(rng: random.Random) -> str:
    """A 22-character url-safe id shaped like a Taskcluster slugid."""
    raw = bytearray(rng.getrandbits(128).to_bytes(16, "big"))
    raw[6] = (raw[6] & 0x0F) | 0x40  # uuid4 version nibble, as slugids have
    raw[8] = (raw[8] & 0x3F) | 0x80
    return base64.urlsafe_b64encode(bytes(raw)).decode()[:22]


def _timestamp(base: float, offset_s: float) -> str:
    t = base + offset_s
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def task_status(task_id: str, group: str, provisioner: str, rng: random.Random) -> dict:
    """The ``status`` structure of a completed one-run task, as the queue publishes it."""
    base = 1_780_000_000 + rng.randrange(1_000_000) + rng.randrange(1000) / 1000
    worker_group = f"us-east-{rng.randrange(1, 4)}"
    worker_id = f"i-{rng.getrandbits(40):010x}"
    return {
        "taskId": task_id,
        "provisionerId": provisioner,
        "workerType": "t-linux-large",
        "schedulerId": "level-3",
        "taskGroupId": group,
        "deadline": _timestamp(base, 86_400),
        "expires": _timestamp(base, 86_400 * 365),
        "retriesLeft": 5,
        "state": "completed",
        "runs": [
            {
                "runId": 0,
                "state": "completed",
                "reasonCreated": "scheduled",
                "reasonResolved": "completed",
                "workerGroup": worker_group,
                "workerId": worker_id,
                "takenUntil": _timestamp(base, 1_500),
                "scheduled": _timestamp(base, 0),
                "started": _timestamp(base, 12),
                "resolved": _timestamp(base, 700),
            }
        ],
    }


def make_messages(count: int, seed: int = 6) -> list[BenchMessage]:
    """``count`` deterministic task-completed messages, a third per dispatch binding.

    Kind 0 matches only ``provisionerId=bench-prov-a``; kind 1 only ``taskGroupId=G``;
    kind 2 only ``route.index.bench.#`` (through its CC header).  Every message carries 1 or 2
    ``route.*`` CC keys, as tasks with routes do.
    """
    rng = random.Random(seed)
    messages = []
    for i in range(count):
        kind = i % 3
        task_id = slug(rng)
        group = GROUP_G if kind == 1 else slug(rng)
        provisioner = PROVISIONER_A if kind == 0 else PROVISIONER_B
        status = task_status(task_id, group, provisioner, rng)
        run = status["runs"][0]
        body = {
            "status": status,
            "runId": 0,
            "workerGroup": run["workerGroup"],
            "workerId": run["workerId"],
            "task": {"tags": {}},
            "version": 1,
        }
        if kind == 0:
            cc = (f"route.tc-treeherder.v2.bench.{task_id}",)
        elif kind == 1:
            cc = (f"route.notify.email.{task_id}.on-failed", f"route.tc-treeherder.v2.bench.{task_id}")
        else:
            cc = (f"route.{INDEX_ROUTE}.{task_id}", f"route.tc-treeherder.v2.bench.{task_id}")
        routing_key = ".".join([
            "primary", task_id, "0", run["workerGroup"], run["workerId"], provisioner,
            status["workerType"], status["schedulerId"], group, "_",
        ])
        messages.append(BenchMessage(routing_key, json.dumps(body, separators=(",", ":")).encode(), cc))
    return messages


# --------------------------------------------------------------------------------------------
# broker


def connect(consume: bool = False) -> amqp.Connection:
    """A py-amqp connection to the bench broker (``consume``: to :func:`consume_url`, over
    TLS when it is ``amqps://``).

    py-amqp sets ``TCP_USER_TIMEOUT`` to 1 s by default, and Linux applies it to zero-window
    probes: when RabbitMQ's credit flow stops reading a fast publisher for over a second (it
    does on a loaded 2-core machine), the connection dies with ETIMEDOUT.  Turned off here.
    """
    host, user, password, vhost = _split(consume_url()) if consume else (BROKER_HOST, BROKER_USER,
                                                                          BROKER_PASSWORD, BROKER_VHOST)
    tls = tls_options() if consume else None
    conn = amqp.Connection(host=host, userid=user, password=password, virtual_host=vhost, heartbeat=0,
                           socket_settings={socket.TCP_USER_TIMEOUT: 0}, ssl=tls or False)
    conn.connect()
    return conn


def rabbitmq_version() -> str:
    conn = connect()
    try:
        version = conn.server_properties.get("version", b"?")
        return version.decode() if isinstance(version, bytes) else str(version)
    finally:
        conn.close()


def unique(name: str) -> str:
    """A queue name under the guest user's Pulse-style namespace, unique to this run."""
    return f"queue/guest/{name}-{uuid.uuid4().hex[:8]}"


def declare_exchange(channel: amqp.Channel, exchange: str = EXCHANGE) -> None:
    channel.exchange_declare(exchange, "topic", durable=True, auto_delete=False)


def declare_queue(channel: amqp.Channel, queue: str, binding_keys: Iterable[str],
                  exchange: str = EXCHANGE) -> None:
    """A durable queue bound with ``binding_keys``, like a listener's."""
    declare_exchange(channel, exchange)
    channel.queue_declare(queue, durable=True, auto_delete=False)
    for key in binding_keys:
        channel.queue_bind(queue, exchange, key)


def delete_queue(queue: str) -> None:
    conn = connect()
    try:
        conn.channel().queue_delete(queue)
    finally:
        conn.close()


def delete_exchange(exchange: str = EXCHANGE) -> None:
    conn = connect()
    try:
        conn.channel().exchange_delete(exchange)
    finally:
        conn.close()


def queue_depth(channel: amqp.Channel, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).message_count


def publish(messages: Sequence[BenchMessage], queues: Sequence[str], exchange: str = EXCHANGE,
            timeout: float = 300.0) -> float:
    """Publish ``messages`` once (persistent, no confirms) and wait until every queue of
    ``queues`` (bound to ``exchange``, each message matching) holds them all.

    Publisher confirms one at a time cost a disk sync each (~1,400 msg/s); without confirms
    and then waiting for the queue depths, 20,000 messages take a few seconds.  Returns the
    seconds taken.
    """
    start = time.perf_counter()
    conn = connect()
    try:
        channel = conn.channel()
        want = {q: queue_depth(channel, q) + len(messages) for q in queues}
        for m in messages:
            msg = amqp.Message(m.body, content_type="application/json", content_encoding="utf-8",
                               delivery_mode=2, application_headers={"CC": list(m.cc)})
            channel.basic_publish(msg, exchange=exchange, routing_key=m.routing_key)
        deadline = time.monotonic() + timeout
        for queue, count in want.items():
            while (have := queue_depth(channel, queue)) < count:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{queue} holds {have} of {count} messages after {timeout:.0f} s")
                time.sleep(0.02)
    finally:
        conn.close()
    return time.perf_counter() - start


def purge(queue: str) -> None:
    conn = connect()
    try:
        conn.channel().queue_purge(queue)
    finally:
        conn.close()


def depth(queue: str) -> int:
    conn = connect()
    try:
        return queue_depth(conn.channel(), queue)
    finally:
        conn.close()


BROKER_PID_VARIABLE = "TCLISTEN_BENCH_BROKER_PID"


def _beam_pid() -> int | None:
    """The Erlang VM of the broker the bench uses: ``TCLISTEN_BENCH_BROKER_PID`` (a private
    node), else the machine's own broker (the beam.smp outside the private nodes' folders:
    other people's tests start private nodes on this machine too)."""
    if os.environ.get(BROKER_PID_VARIABLE):
        return int(os.environ[BROKER_PID_VARIABLE])
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != "beam.smp":
                    continue
            if "tclisten-rabbitmq-" in os.readlink(f"/proc/{pid}/cwd"):
                continue
        except OSError:
            continue
        return int(pid)
    return None


def broker_cpu_seconds() -> float | None:
    """CPU seconds used so far by the bench's RabbitMQ (beam.smp), or None if not visible."""
    pid = _beam_pid()
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def retrying(func: Callable[..., Any], *args: Any, attempts: int = 3, wait: float = 5.0, **kwargs: Any) -> Any:
    """``func(*args, **kwargs)``, tried again after ``wait`` seconds if it raises.

    The broker on a shared machine is restarted now and then by other people's fault tests
    (``rabbitmqctl stop_app``); one lost connection should cost a retry, not the run.
    """
    for attempt in range(1, attempts + 1):
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if attempt == attempts:
                raise
            logger.warning("%s failed (%s: %s); again in %.0f s", getattr(func, "__name__", func),
                           exc.__class__.__name__, str(exc).strip().splitlines()[-1:] or "", wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------
# subprocesses


def _child(conn: Any, func: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    try:
        conn.send(("ok", func(*args, **kwargs)))
    except BaseException:  # the parent reports it; nothing may escape a benchmark child
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def in_subprocess(func: Callable[..., Any], *args: Any, timeout: float = 300.0, **kwargs: Any) -> Any:
    """Run ``func(*args, **kwargs)`` in a fresh (spawned) Python process and return its result.

    Each candidate runs in a process of its own so that no candidate inherits another's
    imports, caches or heap.  Raises RuntimeError with the child's traceback on failure.
    """
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, func, args, kwargs), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            raise RuntimeError(f"{getattr(func, '__name__', func)} did not finish in {timeout:.0f} s")
        status, value = parent.recv()
    except EOFError:
        status, value = "error", f"child exited with code {proc.exitcode} without a result"
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
        parent.close()
    if status != "ok":
        raise RuntimeError(value)
    return value


def max_rss_mib() -> float:
    """Peak resident set size of this process so far: ``VmHWM``, not ``ru_maxrss``, which
    Linux carries across ``execve`` (a spawned child would report its parent's peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine so far (/proc/stat), to tell how busy it
    was over a window: ``busy_share(before, after)``."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU (all cores) that was busy between two readings."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else float("nan")


def load() -> str:
    """The machine's load averages (1, 5, 15 minutes), for the report."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------------------------
# statistics and the machine


def median(values: Iterable[float]) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def ratios(candidate: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """Per-round ratios candidate/baseline (same round, so drift between rounds cancels)."""
    return [c / b for c, b in zip(candidate, baseline) if c is not None and b]


def version_of(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        rabbit = rabbitmq_version()
    except Exception as exc:  # a report line, not a failure
        rabbit = f"unknown ({exc.__class__.__name__})"
    info = {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "OS": platform.platform(),
        "Python": sys.version.split()[0],
        "RabbitMQ": rabbit,
    }
    for dist in ("kombu", "amqp", "requests", "mohawk", "taskcluster", "faststream", "aio-pika", "nameko",
                 "eventlet"):
        info[dist] = version_of(dist)
    info["tclisten"] = tclisten_revision()
    return info


def tclisten_revision() -> str:
    """The commit of the working tree measured (``+ uncommitted changes`` when dirty)."""
    import subprocess

    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "tclisten"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not rev:
        return "unknown (not a git checkout)"
    return f"git {rev}" + (" + uncommitted changes in tclisten/" if dirty else "")
