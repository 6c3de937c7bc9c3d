"""Helpers of the command-line tests: the real ``tclisten`` command in a subprocess, listener
files of the tests' own, and the broker objects they create on 5672 (unique names, deleted
afterwards)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

HANDLERS = """\
import logging, time
seen = []

def on_push(message, ctx):
    ctx.logger.info("push %s", message.routing_key)

def on_failing(message, ctx):
    raise RuntimeError("boom on " + message.routing_key)

def on_slow(message, ctx):
    ctx.logger.info("sleeping")
    time.sleep(float(message.body.get("sleep", 5)))
"""


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user who set nothing of Taskcluster's, Pulse's or tclisten's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKCLUSTER_", "PULSE_", "TCLISTEN_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def tclisten(*argv: str, cwd: Path = ROOT, env: dict | None = None, input: str | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``python -m tclisten ARGV`` to its end."""
    return subprocess.run([sys.executable, "-m", "tclisten", *argv], cwd=cwd, env=env or clean_env(),
                          input=input, capture_output=True, text=True, timeout=timeout,
                          stdin=None if input is not None else subprocess.DEVNULL)


def start(*argv: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.Popen:
    """Start ``python -m tclisten ARGV``; stderr is read by the test."""
    return subprocess.Popen([sys.executable, "-m", "tclisten", *argv], cwd=cwd, env=env or clean_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Listeners:
    """Listener files in a folder of their own; their queues and exchanges go after the test."""

    def __init__(self, folder: Path, broker_url: str) -> None:
        self.folder = folder
        self.broker_url = broker_url
        self.made: list[Path] = []
        self.exchanges: list[str] = []
        (folder / "handlers.py").write_text(HANDLERS)

    def exchange(self) -> str:
        """A raw topic exchange of the test's own, declared on the broker."""
        from kombu import Connection, Exchange

        name = f"exchange/guest/tclisten-test-{uuid.uuid4().hex[:8]}"
        with Connection(self.broker_url) as conn, conn.channel() as channel:
            Exchange(name, "topic", durable=True)(channel).declare()
        self.exchanges.append(name)
        return name

    def write(self, bindings: str, extra: str = "", name: str | None = None) -> Path:
        name = name or f"cli-test-{uuid.uuid4().hex[:8]}"
        path = self.folder / f"{name}.yaml"
        path.write_text(f"name: {name}\nbroker_url: {self.broker_url}\n{extra}bindings:\n"
                        + textwrap.dedent(bindings))
        self.made.append(path)
        return path

    def raw(self, handler: str = "handlers.py:on_push", extra: str = "", exchange: str | None = None) -> Path:
        """A listener of one binding on a fresh raw exchange (``routing_key: '#'``)."""
        exchange = exchange or self.exchange()
        return self.write(f"""\
          - exchange: {exchange}
            routing_key: "#"
            handler: {handler}
        """, extra=extra)

    def forget(self) -> None:
        from kombu import Connection

        from tclisten.config import build_listener, load_config

        with Connection(self.broker_url) as conn, conn.channel() as channel:
            for path in self.made:
                try:
                    app = build_listener(load_config(path, lenient=True))
                except Exception:  # a file the test broke on purpose
                    continue
                for queue in app.queue_names():
                    channel.queue_delete(queue)
                channel.exchange_delete(app.topology.exchange.name)
            for name in self.exchanges:
                channel.exchange_delete(name)


class Lines:
    """The stderr of a running command, line by line (read on a thread of its own)."""

    def __init__(self, process: subprocess.Popen) -> None:
        import queue
        import threading

        self.process = process
        self.seen: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, text: str, timeout: float = 30) -> str:
        """The first line (from here on) that contains ``text``."""
        import queue
        import time

        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} within {timeout} s:\n" + "\n".join(self.seen)) from None
            if line is None:
                raise AssertionError(f"the command ended without a line with {text!r}:\n" + "\n".join(self.seen))
            self.seen.append(line)
            if text in line:
                return line

    def rest(self, timeout: float = 60) -> list[str]:
        """Every remaining line, once the command ended."""
        self.process.wait(timeout=timeout)
        import queue

        while True:
            try:
                line = self._queue.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
        return self.seen


def publish(broker_url: str, exchange: str, routing_key: str, body, headers: dict | None = None) -> None:
    import json

    from kombu import Connection, Producer

    with Connection(broker_url, transport_options={"confirm_publish": True}) as conn, conn.channel() as channel:
        Producer(channel).publish(body if isinstance(body, (bytes, str)) else json.dumps(body), exchange=exchange,
                                  routing_key=routing_key, headers=headers or {}, content_type="application/json",
                                  delivery_mode=2, retry=False)


def message_count(broker_url: str, queue: str) -> int:
    from kombu import Connection

    with Connection(broker_url) as conn, conn.channel() as channel:
        return channel.queue_declare(queue, passive=True).message_count


def readme_listener() -> str:
    """The README's ten-line listener, whose last line is ``app.run()``."""
    import re

    text = (ROOT / "README.md").read_text()
    return next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "app.run()" in b)
