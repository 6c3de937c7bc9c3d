"""Private RabbitMQ nodes and a 3-node cluster for tests that stop, restart, kill or cluster a broker.

The machine's own broker (``rabbit@localhost`` on 5672) belongs to the user: nothing here stops,
reconfigures or writes to it.  Every node this module starts lives in a fresh folder under the temp
dir, has a name unique to the run, listens on 127.0.0.1 only, on ports probed free, and is stopped
(then its folder removed) by :meth:`Node.destroy` / :meth:`Cluster.destroy`, by an ``atexit`` hook
if a test run forgets, or by :func:`reap_leftovers` on the next run if the previous one was killed.

Usage::

    from support.nodes import Node, Cluster

    with Node() as node:               # ~4-7 s on a 2-core machine
        kombu.Connection(node.url)     # amqp://guest:guest@127.0.0.1:PORT//
        node.queue_counts("queue/guest/x")   # (ready, unacked)
        node.stop_app(); node.start_app()    # broker restart, process stays
        node.kill(); node.start()            # hard crash, then recovery from the same data

    with Cluster(3) as cluster:        # ~12-18 s
        kombu.Connection(cluster.failover_url)
        cluster.node_of_connection(conn)     # which node a client is on
        cluster.stop_node(0); cluster.start_node(0)

How a node is started (and why)
-------------------------------
* The scripts are run from ``/usr/lib/rabbitmq/bin`` (the real ones), not the Debian wrappers in
  ``/usr/sbin``: as root those wrappers ``su rabbitmq`` (which resets ``HOME`` to
  ``/var/lib/rabbitmq`` and so forces the system broker's Erlang cookie), and ``rabbitmq-server``
  there ``cd``'s to ``/var/lib/rabbitmq``.  ``runuser -u rabbitmq`` resets ``HOME`` the same way, so
  the server is started with :class:`subprocess.Popen` ``user=``/``group=`` instead, which keeps
  the environment we give it.
* **Erlang cookie.**  ``/root/.erlang.cookie`` does not exist here; ``rabbitmqctl`` as root works for
  the system broker only because the wrapper switches to the ``rabbitmq`` user and its
  ``/var/lib/rabbitmq/.erlang.cookie``.  Our nodes get a cookie of their own (random, per run, shared
  by the nodes of a cluster) in ``<folder>/home/.erlang.cookie`` and run with ``HOME`` pointing
  there; :meth:`Node.rabbitmqctl` runs the CLI as root with the same ``HOME``.  The cookie file is
  owned by ``rabbitmq`` with mode 0400: Erlang only checks the mode bits, so root reads it fine.  A
  private cookie also means our nodes cannot talk to ``rabbit@localhost`` even by mistake.
* **Folder permissions.**  :func:`tempfile.mkdtemp` makes a 0700 root folder the ``rabbitmq`` user
  cannot enter: the folder is made 0755 and everything in it is chowned to ``rabbitmq`` when we run
  as root (as any other user the node simply runs as that user).
* **Config.**  ``/etc/rabbitmq/rabbitmq-env.conf`` sets ``NODENAME=rabbit@localhost`` and
  ``/etc/rabbitmq/rabbitmq.conf`` sets the 5672 listener, so every path the server would read from
  ``/etc/rabbitmq`` (env file, main config, ``conf.d``, ``advanced.config``, enabled plugins) is
  pointed into the node's folder.  The node's ``rabbitmq.conf`` has ``listeners.tcp.1 =
  127.0.0.1:PORT``, ``loopback_users = none`` (harmless, the listener is loopback only) and
  optionally ``consumer_timeout``; no plugins are enabled.  Erlang distribution listens on
  127.0.0.1 only (``-kernel inet_dist_use_interface``) on ``RABBITMQ_DIST_PORT = amqp port +
  20000`` and registers with the machine's epmd (4369), which is shared and left alone.
* The server runs in the foreground in a session of its own (so the whole process group can be
  killed at the end); ``-detached`` is not used.  Its stdout goes to ``<node folder>/stdout.log``,
  its log to ``<node folder>/log/<name>.log``; :meth:`Node.log_tail` shows both in failure messages.
* Names are ``tcl<pid>x<random>n<i>@localhost`` and folders ``tclisten-rabbitmq-<pid>-*``, so two
  runs (or a leftover) never collide; :func:`reap_leftovers` kills the nodes of folders whose run is
  gone (only processes whose cwd or environment names that folder, never epmd) and removes the folders.

Measured here (2 cores, RabbitMQ 3.10.8 / OTP 25)
-------------------------------------------------
=====================================  ==============================================
single node: start / destroy           3.6-6.8 s / 1.5 s
``stop_app`` / ``start_app``           0.4 s / 1.2 s
``kill`` / ``start`` after the kill    0.1 s / 3.3-4.1 s (recovers its durable data)
3-node cluster: start / destroy        11.6-12.9 s idle, 16.6-17.6 s with two test runs at
                                       once / 1.8 s  (``Cluster.start_seconds`` has it)
``stop_node`` / ``start_node``         1.4 s / 4.6 s (rejoins by itself)
one ``rabbitmqctl`` call               0.35-0.8 s (an Erlang VM boots each time)
=====================================  ==============================================

The cluster starts faster than the ~40 s of the sequential recipe because the three nodes boot
in parallel (readiness is polled on the AMQP port, then confirmed once with ``await_startup``),
the two joins (``stop_app``, ``join_cluster``) are quick, and the two ``start_app`` run in
parallel.

Other things found on the way
-----------------------------
* ``consumer_timeout`` is only checked on the channel tick (``channel_tick_interval``, 60 s,
  advanced.config only): a 3 s timeout fired after 60 s.  ``Node(consumer_timeout=...)`` therefore
  also sets the tick to <= 1 s (a 3 s timeout then fires after ~4 s).
* py-amqp's ``channel.queue_declare`` defaults to ``auto_delete=True``, which a quorum queue
  refuses (``PRECONDITION_FAILED - invalid property 'auto-delete'``): pass ``auto_delete=False``.
* ``list_connections`` is cluster-wide; ``port`` (the server's port) tells the node,
  ``peer_port`` is the client's local port.  ``peer_host`` comes back as ``[127, 0, 0, 1]`` in JSON.
* A node killed with SIGKILL leaves a zombie until its (also exiting) wrapper shell is reaped;
  :func:`_pid_alive` treats zombies as gone.
* After SIGKILL of the test run itself the nodes keep running (own session): the next run's
  :func:`reap_leftovers` (called whenever a Node/Cluster is made) stops them.  SIGTERM of the
  run is the same (Python runs no teardown on SIGTERM); Ctrl-C runs pytest's teardown.
* ``log.console = false`` notwithstanding, the foreground server also logs to stdout
  (``stdout.log``), so failures quote both.
"""

from __future__ import annotations

import atexit
import json
import os
import pwd
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterable, Optional, Sequence

__all__ = [
    "Node",
    "Cluster",
    "NodeError",
    "PulseUser",
    "client_socket",
    "pick_amqp_port",
    "pulse_permissions",
    "rabbitmq_available",
    "reap_leftovers",
    "system_broker_state",
]

FOLDER_PREFIX = "tclisten-rabbitmq-"
SBIN_CANDIDATES = ("/usr/lib/rabbitmq/bin",)
START_TIMEOUT = float(os.environ.get("TCLISTEN_TEST_NODE_START_TIMEOUT", "180"))
CTL_TIMEOUT = 120.0
AMQP_PORT_RANGE = (21000, 39000)  # the Erlang distribution port is amqp port + 20000
DIST_OFFSET = 20000

_live: set = set()  # every Node/Cluster not destroyed yet (strong refs: a forgotten one is still stopped)
_reserved_ports: set[int] = set()
_ports_lock = threading.Lock()


class NodeError(RuntimeError):
    """A node did not start, stop or answer as expected (the message carries its log's tail)."""


# --------------------------------------------------------------------------------------------
# locating the installation
# --------------------------------------------------------------------------------------------


def _sbin() -> Optional[Path]:
    """The folder with the real ``rabbitmq-server`` / ``rabbitmqctl`` scripts, or None."""
    env = os.environ.get("TCLISTEN_RABBITMQ_SBIN")
    for candidate in ([env] if env else []) + list(SBIN_CANDIDATES):
        if candidate and (Path(candidate) / "rabbitmq-server").exists():
            return Path(candidate)
    found = shutil.which("rabbitmq-server")
    if found:
        real = Path(found).resolve()  # /usr/sbin/rabbitmq-server may be the Debian su-wrapper
        if "rabbitmq_server-" in str(real) or (real.parent / "rabbitmq-env").exists():
            return real.parent
    return None


def rabbitmq_available() -> Optional[str]:
    """None when private nodes can be started here, else the reason they cannot."""
    sbin = _sbin()
    if sbin is None:
        return "rabbitmq-server is not installed (looked in /usr/lib/rabbitmq/bin and on PATH)"
    if not (sbin / "rabbitmqctl").exists():
        return f"rabbitmqctl is missing next to {sbin / 'rabbitmq-server'}"
    return None


def _run_as() -> Optional[tuple[int, int]]:
    """(uid, gid) of the ``rabbitmq`` user when we are root and it exists, else None."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(os.environ.get("TCLISTEN_RABBITMQ_USER", "rabbitmq"))
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


# --------------------------------------------------------------------------------------------
# ports, folders, leftovers
# --------------------------------------------------------------------------------------------


def _port_free(port: int) -> bool:
    for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "0.0.0.0")):
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.bind((addr, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def pick_amqp_port() -> int:
    """A port P with P and P + 20000 (its distribution port) free on 127.0.0.1 right now.

    Ports handed out in this process are remembered, so parallel starts never get the same one;
    another process could still grab it before the node binds it (the node then fails to start
    and :meth:`Node.start` retries on new ports)."""
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randrange(*AMQP_PORT_RANGE)
        with _ports_lock:
            if port in _reserved_ports:
                continue
            if _port_free(port) and _port_free(port + DIST_OFFSET):
                _reserved_ports.add(port)
                return port
    raise NodeError("no free pair of ports (P, P+20000) found")


def _pid_alive(pid: int) -> bool:
    """Process ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _pids_of_folder(folder: str) -> list[int]:
    """Processes started for a node folder: their working directory or environment names it.

    (The Erlang VM's command line does not contain the folder; its cwd and its RABBITMQ_*
    environment do.)  epmd is never included: it is shared with the machine's own broker."""
    folder = str(folder)
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        if "epmd" in _cmdline(pid):
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            cwd = ""
        hit = cwd == folder or cwd.startswith(folder + "/")
        if not hit:
            try:
                hit = ("=" + folder + "/").encode() in Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                hit = False
        if hit:
            pids.append(pid)
    return pids


def reap_leftovers(tmp: Optional[str] = None) -> list[str]:
    """Kill the nodes of earlier runs that died without cleaning up, and remove their folders.

    A folder ``tclisten-rabbitmq-<pid>-*`` is a leftover when process <pid> is gone.  Only
    processes whose cwd or environment names the folder are killed (never anything by name).  Returns
    the folders removed."""
    tmp = tmp or tempfile.gettempdir()
    removed = []
    for folder in Path(tmp).glob(FOLDER_PREFIX + "*"):
        m = re.match(re.escape(FOLDER_PREFIX) + r"(\d+)-", folder.name)
        if not m or int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1))):
            continue
        for pid in _pids_of_folder(str(folder)):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(str(folder))
    return removed


class _Base:
    """A run's folder: ``home/.erlang.cookie`` shared by its nodes, one sub-folder per node."""

    def __init__(self, tag: str = "") -> None:
        reap_leftovers()
        self.path = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-{tag}"))
        self.path.chmod(0o755)
        self.token = secrets.token_hex(3)
        self.cookie = secrets.token_hex(20).upper()
        home = self.path / "home"
        home.mkdir()
        cookie = home / ".erlang.cookie"
        cookie.write_text(self.cookie)
        cookie.chmod(0o400)
        (self.path / "cli-env.conf").write_text("")
        self.chown(home, cookie)

    @property
    def home(self) -> Path:
        return self.path / "home"

    def chown(self, *paths: Path) -> None:
        ids = _run_as()
        if ids:
            for p in paths:
                os.chown(p, *ids)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# one node
# --------------------------------------------------------------------------------------------


class Node:
    """One private RabbitMQ node: ``amqp://guest:guest@127.0.0.1:<amqp_port>//``.

    ``Node()`` only prepares; :meth:`start` boots it (and waits until it accepts AMQP),
    :meth:`destroy` (or leaving a ``with`` block) stops it and removes its folder.  Between those,
    :meth:`stop`/:meth:`start` (process stopped, data kept), :meth:`stop_app`/:meth:`start_app`
    (the broker inside stops, the Erlang VM stays: what ``rabbitmqctl stop_app`` does in
    production) and :meth:`kill` (SIGKILL, a hard crash) can be used any number of times.
    """

    def __init__(
        self,
        *,
        consumer_timeout: Optional[int] = None,
        config: Sequence[str] = (),
        channel_tick_interval: Optional[int] = None,
        advanced_config: Optional[str] = None,
        name: Optional[str] = None,
        amqp_port: Optional[int] = None,
        base: Optional[_Base] = None,
        index: int = 1,
    ) -> None:
        """``consumer_timeout`` (ms) goes into rabbitmq.conf (the broker's default is 30 min).  The
        broker only checks it on each channel's tick, every ``channel_tick_interval`` ms (60 s by
        default, settable only in advanced.config): measured here, a 3 s consumer_timeout closed
        the channel after 60 s.  So when ``consumer_timeout`` is given, the tick defaults to
        ``min(1000, consumer_timeout)`` and the channel closes within ~1 s after the timeout (a
        ``PRECONDITION_FAILED - delivery acknowledgement on channel N timed out``).
        ``config`` are extra rabbitmq.conf lines, ``advanced_config`` an Erlang term list for
        advanced.config that replaces the generated one."""
        reason = rabbitmq_available()
        if reason:
            raise NodeError(reason)
        self._sbin = _sbin()
        self._own_base = base is None
        self.base = base or _Base()
        self.index = index
        self.name = name or f"tcl{os.getpid()}x{self.base.token}n{index}@localhost"
        self.amqp_port = amqp_port or pick_amqp_port()
        self.consumer_timeout = consumer_timeout
        self.extra_config = list(config)
        if channel_tick_interval is None and consumer_timeout is not None:
            channel_tick_interval = max(100, min(1000, int(consumer_timeout)))
        self.channel_tick_interval = channel_tick_interval
        self.advanced_config = advanced_config
        self.dir = self.base.path / f"node{index}"
        self.dir.mkdir(exist_ok=True)
        self._proc: Optional[subprocess.Popen] = None
        self._stdout = None
        self._started_once = False
        self._write_config()
        _live.add(self)

    # ---- addresses ----

    @property
    def dist_port(self) -> int:
        return self.amqp_port + DIST_OFFSET

    @property
    def url(self) -> str:
        """The guest URL (guest is administrator with all permissions on ``/`` on a fresh node)."""
        return self.url_for("guest", "guest")

    def url_for(self, user: str, password: str, vhost: str = "/") -> str:
        """amqp://USER:PASSWORD@127.0.0.1:PORT/VHOST (quoted; vhost ``/`` gives the usual ``//``)."""
        from urllib.parse import quote

        auth = f"{quote(user, safe='')}:{quote(password, safe='')}"
        return f"amqp://{auth}@127.0.0.1:{self.amqp_port}/{quote(vhost, safe='')}"

    @property
    def log_file(self) -> Path:
        return self.dir / "log" / f"{self.name}.log"

    def __repr__(self) -> str:
        return f"<Node {self.name} amqp={self.amqp_port} {'running' if self.process_alive() else 'stopped'}>"

    # ---- files and environment ----

    def _write_config(self) -> None:
        for sub in ("log", "mnesia", "conf.d"):
            (self.dir / sub).mkdir(exist_ok=True)
        lines = [
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}",
            "loopback_users = none",
            "log.file.level = info",
            "log.console = false",
        ]
        if self.consumer_timeout is not None:
            lines.append(f"consumer_timeout = {int(self.consumer_timeout)}")
        lines += self.extra_config
        (self.dir / "rabbitmq.conf").write_text("\n".join(lines) + "\n")
        advanced = self.advanced_config
        if advanced is None and self.channel_tick_interval is not None:
            advanced = f"[{{rabbit, [{{channel_tick_interval, {int(self.channel_tick_interval)}}}]}}]."
        if advanced is not None:
            (self.dir / "advanced.config").write_text(advanced.rstrip() + "\n")
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")
        self.base.chown(*[p for p in [self.dir, *self.dir.rglob("*")]])

    def _server_env(self) -> dict:
        d = str(self.dir)
        return {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"),
            "HOME": str(self.base.home),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": f"{d}/rabbitmq-env.conf",
            "RABBITMQ_CONFIG_FILE": f"{d}/rabbitmq.conf",
            "RABBITMQ_CONFIG_FILES": f"{d}/conf.d",
            "RABBITMQ_ADVANCED_CONFIG_FILE": f"{d}/advanced.config",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{d}/enabled_plugins",
            "RABBITMQ_MNESIA_BASE": f"{d}/mnesia",
            "RABBITMQ_LOG_BASE": f"{d}/log",
            "RABBITMQ_PID_FILE": f"{d}/pid",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def _cli_env(self) -> dict:
        return {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"),
            "HOME": str(self.base.home),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "RABBITMQ_CONF_ENV_FILE": str(self.base.path / "cli-env.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    # ---- process ----

    def process_alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def beam_pid(self) -> Optional[int]:
        """The Erlang VM's OS pid (the pid file the node writes at boot), None when not running."""
        try:
            pid = int((self.dir / "pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self._is_ours(pid) else None

    def _is_ours(self, pid: int) -> bool:
        """Process ``pid`` runs in this node's folder (the VM's cwd; its command line only names
        the shared home)."""
        try:
            return os.readlink(f"/proc/{pid}/cwd") == str(self.dir)
        except OSError:
            return False

    def port_open(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.amqp_port), timeout=1).close()
            return True
        except OSError:
            return False

    def spawn(self) -> None:
        """Launch the server process without waiting for it (see :meth:`wait_started`)."""
        if self.process_alive():
            return
        self._close_stdout()
        try:
            (self.dir / "pid").unlink()
        except OSError:
            pass
        if not self._started_once:  # a retry on new ports: forget the failed attempt's output
            for f in (self.dir / "stdout.log", self.log_file):
                try:
                    f.unlink()
                except OSError:
                    pass
        self._stdout = open(self.dir / "stdout.log", "ab")
        kwargs = {}
        ids = _run_as()
        if ids:
            kwargs = {"user": ids[0], "group": ids[1], "extra_groups": []}
        self._proc = subprocess.Popen(
            [str(self._sbin / "rabbitmq-server")],
            cwd=str(self.dir),
            env=self._server_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )
        _live.add(self)

    def wait_started(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until the node accepts AMQP and ``await_startup`` agrees; NodeError if it dies."""
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is None or self._proc.poll() is not None:
                raise NodeError(f"{self.name} exited while starting\n{self.log_tail()}")
            if self.port_open():
                try:
                    self.rabbitmqctl("await_startup", "--timeout", "60", timeout=90)
                    return
                except NodeError:
                    pass
            if time.monotonic() > deadline:
                raise NodeError(f"{self.name} did not start within {timeout:.0f} s\n{self.log_tail()}")
            time.sleep(0.3)

    def start(self, timeout: float = START_TIMEOUT) -> "Node":
        """Start the node process (again, with the same data) and wait until it serves AMQP."""
        self.spawn()
        self.finish_start(timeout)
        return self

    def finish_start(self, timeout: float = START_TIMEOUT) -> None:
        """:meth:`wait_started` after :meth:`spawn`.  On the very first start, a node that dies
        because its AMQP or distribution port was taken meanwhile (by another process, between
        probing and binding) is started again on new ports, up to 3 times.  Whatever else goes
        wrong, nothing of the node is left running."""
        for attempt in range(3):
            try:
                self.wait_started(timeout)
                self._started_once = True
                return
            except NodeError:
                self._terminate(grace=10)
                if attempt < 2 and not self._started_once and self._port_conflict():
                    old = self.amqp_port
                    self.amqp_port = pick_amqp_port()
                    with _ports_lock:
                        _reserved_ports.discard(old)
                    self._write_config()
                    self.spawn()
                    continue
                raise

    def _port_conflict(self) -> bool:
        """The last start failed because a port was in use (AMQP listener or distribution)."""
        for f in (self.dir / "stdout.log", self.log_file):
            try:
                text = f.read_text(errors="replace")
            except OSError:
                continue
            if "eaddrinuse" in text or "dist_port_already_used" in text:
                return True
        return False

    def stop(self, timeout: float = 90) -> None:
        """``rabbitmqctl stop`` (a clean shutdown, data kept); SIGTERM then SIGKILL the node's
        process group if it is still there after ``timeout``.  No-op when not running."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            try:
                self.rabbitmqctl("stop", timeout=timeout)
            except NodeError:
                pass
        self._terminate(grace=timeout)

    def _terminate(self, grace: float = 30) -> None:
        """Make sure nothing of the node is left running (polite first, then SIGKILL)."""
        proc = self._proc
        if proc is None:
            return
        beam = self.beam_pid()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                proc.wait(timeout=15)
        # the VM is normally a child of the (exited) wrapper shell; make sure it is gone too
        for pid in {beam, *_pids_of_folder(str(self.dir))} - {None}:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self._wait_gone(beam)
        self._close_stdout()

    def _wait_gone(self, pid: Optional[int], timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while pid and self._is_ours(pid) and time.monotonic() < deadline:
            time.sleep(0.1)

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self._proc.pid, sig)
        except OSError:
            pass

    def _close_stdout(self) -> None:
        if self._stdout is not None:
            self._stdout.close()
            self._stdout = None

    def kill(self) -> None:
        """SIGKILL the Erlang VM: a hard crash (no clean shutdown, clients see a dead socket).
        :meth:`start` brings it back with the same data."""
        if self._proc is None:
            return
        beam = self.beam_pid()
        if beam:
            os.kill(beam, signal.SIGKILL)
        self._signal_group(signal.SIGKILL)
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        self._wait_gone(beam)
        self._close_stdout()

    def stop_app(self) -> None:
        """``rabbitmqctl stop_app``: the broker stops (connections are closed, the port is shut),
        the Erlang VM keeps running."""
        self.rabbitmqctl("stop_app")
        deadline = time.monotonic() + 30
        while self.port_open() and time.monotonic() < deadline:
            time.sleep(0.1)

    def start_app(self, timeout: float = START_TIMEOUT) -> None:
        """``rabbitmqctl start_app`` and wait until AMQP is served again."""
        self.rabbitmqctl("start_app", timeout=timeout)
        self.wait_started(timeout)

    def restart(self) -> None:
        """Full process restart (stop, start)."""
        self.stop()
        self.start()

    def heal(self) -> None:
        """Whatever a test left behind (killed, stopped, stop_app), make the node serve again."""
        if not self.process_alive():
            self._terminate()
            self.start()
        elif not self.port_open():
            try:
                self.rabbitmqctl("start_app")
            except NodeError:
                pass
            self.wait_started()

    def destroy(self) -> None:
        """Stop the node for good (also when it does not answer) and remove its folder (the run's
        folder too when this node created it)."""
        try:
            self.stop()
        finally:
            self._terminate(grace=5)
            _live.discard(self)
            with _ports_lock:
                _reserved_ports.discard(self.amqp_port)
            if self._own_base:
                self.base.remove()

    def __enter__(self) -> "Node":
        if not self.process_alive():
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for f in (self.dir / "stdout.log", self.log_file):
            try:
                text = f.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            out.append(f"--- {f} ---\n" + "\n".join(text))
        return "\n".join(out)

    # ---- rabbitmqctl ----

    def rabbitmqctl(self, *args: str, timeout: float = CTL_TIMEOUT, check: bool = True) -> str:
        """Run ``rabbitmqctl -n <this node> ARGS`` (as the current user, with this run's cookie) and
        return its stdout; NodeError on a non-zero exit (when ``check``) or a timeout."""
        cmd = [str(self._sbin / "rabbitmqctl"), "-n", self.name, *map(str, args)]
        try:
            res = subprocess.run(
                cmd, env=self._cli_env(), cwd=str(self.base.path), capture_output=True, text=True,
                timeout=timeout, stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as e:
            raise NodeError(f"{' '.join(cmd[1:])}: no answer within {timeout:.0f} s") from e
        if check and res.returncode != 0:
            raise NodeError(f"rabbitmqctl {' '.join(cmd[3:])} on {self.name} failed ({res.returncode}):\n"
                            f"{res.stdout}{res.stderr}")
        return res.stdout

    def rabbitmqctl_json(self, *args: str, **kw) -> object:
        """``rabbitmqctl ... --formatter json``, parsed."""
        out = self.rabbitmqctl(*args, "--formatter", "json", **kw)
        return json.loads(out) if out.strip() else []

    def queues(self, vhost: str = "/", *fields: str) -> dict[str, dict]:
        """``list_queues`` of ``vhost`` as ``{name: {field: value}}`` (default fields: messages_ready,
        messages_unacknowledged, consumers, type, durable, auto_delete, arguments)."""
        fields = fields or ("messages_ready", "messages_unacknowledged", "consumers", "type",
                            "durable", "auto_delete", "arguments")
        rows = self.rabbitmqctl_json("list_queues", "-p", vhost, "name", *fields)
        return {row["name"]: row for row in rows}

    def queue_counts(self, name: str, vhost: str = "/") -> tuple[int, int]:
        """(messages ready, messages unacknowledged) of queue ``name``; KeyError if there is no such
        queue.  Names with slashes (``queue/guest/x``) are fine.  The counts are read from the
        queue itself, but acks and deliveries in flight reach it asynchronously: poll for an
        expected value rather than asserting it once."""
        rows = self.queues(vhost, "messages_ready", "messages_unacknowledged")
        if name not in rows:
            raise KeyError(f"no queue {name!r} in vhost {vhost!r} on {self.name}")
        return int(rows[name]["messages_ready"] or 0), int(rows[name]["messages_unacknowledged"] or 0)

    def exchanges(self, vhost: str = "/") -> dict[str, dict]:
        rows = self.rabbitmqctl_json("list_exchanges", "-p", vhost, "name", "type", "durable", "auto_delete")
        return {row["name"]: row for row in rows}

    def add_user(self, user: str, password: str, *tags: str) -> None:
        self.rabbitmqctl("add_user", user, password)
        if tags:
            self.rabbitmqctl("set_user_tags", user, *tags)

    def delete_user(self, user: str) -> None:
        self.rabbitmqctl("delete_user", user, check=False)

    def set_permissions(self, user: str, configure: str, write: str, read: str, vhost: str = "/") -> None:
        self.rabbitmqctl("set_permissions", "-p", vhost, user, configure, write, read)

    def add_vhost(self, vhost: str) -> None:
        self.rabbitmqctl("add_vhost", vhost)

    def users(self) -> list[dict]:
        return self.rabbitmqctl_json("list_users")

    def connections(self, *fields: str) -> list[dict]:
        """The client connections served by this node (``list_connections`` is cluster-wide; rows
        are kept whose server ``port`` is this node's AMQP port).  Default fields: name, user,
        vhost, peer_host, peer_port (the client's local port), port, state."""
        wanted = fields or ("name", "user", "vhost", "peer_host", "peer_port", "state")
        fields = tuple(dict.fromkeys(("port", *wanted)))
        rows = self.rabbitmqctl_json("list_connections", *fields)
        return [row for row in rows if int(row.get("port") or 0) == self.amqp_port]

    def close_all_connections(self, reason: str = "closed by test") -> None:
        """Server-side close of every client connection on this node (a "connection cut" that the
        client sees as a connection.close from the broker)."""
        self.rabbitmqctl("close_all_connections", reason)

    def running(self) -> bool:
        """The node's process is alive and its AMQP port accepts connections (cheap: no CLI)."""
        return self.process_alive() and self.port_open()


# --------------------------------------------------------------------------------------------
# a cluster
# --------------------------------------------------------------------------------------------


def _parallel(fns: Iterable) -> None:
    """Run callables in threads; re-raise the first failure after all have finished."""
    errors: list[BaseException] = []

    def run(fn):
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(fn,), daemon=True) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


class Cluster:
    """``size`` private nodes (default 3) clustered together: nodes 2.. joined to node 1.

    ``nodes[i]`` are :class:`Node` objects (index 0 is "node 1"); all share one Erlang cookie.
    Use :attr:`failover_url` for a kombu connection with alternates, :meth:`node_of_connection` to
    see which node a client is on, :meth:`stop_node`/:meth:`start_node` (or the nodes' own
    ``kill``/``stop_app``...) to break things and :meth:`heal` to repair.
    """

    def __init__(self, size: int = 3, *, consumer_timeout: Optional[int] = None, config: Sequence[str] = (),
                 channel_tick_interval: Optional[int] = None):
        reason = rabbitmq_available()
        if reason:
            raise NodeError(reason)
        self.base = _Base("cluster-")
        self.nodes = [Node(consumer_timeout=consumer_timeout, config=config, base=self.base, index=i + 1,
                           channel_tick_interval=channel_tick_interval)
                      for i in range(size)]
        self.start_seconds: Optional[float] = None
        _live.add(self)

    def start(self) -> "Cluster":
        """Boot all nodes in parallel, then join nodes 2.. to node 1 (``stop_app``, ``join_cluster``,
        ``start_app``; joins one by one, app starts in parallel) and wait until every node reports
        all of them running."""
        t0 = time.monotonic()
        try:
            for n in self.nodes:
                n.spawn()
            _parallel([n.finish_start for n in self.nodes])
            first = self.nodes[0]
            for n in self.nodes[1:]:
                n.rabbitmqctl("stop_app")
                n.rabbitmqctl("join_cluster", first.name)
            _parallel([n.start_app for n in self.nodes[1:]])
            self.wait_running(len(self.nodes))
        except BaseException:
            self.destroy()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    # ---- addresses ----

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    @property
    def failover_url(self) -> str:
        """``amqp://...:P1//;amqp://...:P2//;amqp://...:P3//`` (kombu tries them in order)."""
        return ";".join(self.urls)

    def __getitem__(self, i: int) -> Node:
        return self.nodes[i]

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes)

    # ---- state ----

    def _any_running(self) -> Node:
        for n in self.nodes:
            if n.running():
                return n
        raise NodeError("no node of the cluster is running")

    def rabbitmqctl(self, *args: str, **kw) -> str:
        """rabbitmqctl against the first running node."""
        return self._any_running().rabbitmqctl(*args, **kw)

    def status(self) -> dict:
        """``cluster_status --formatter json`` of a running node (``running_nodes``, ``disk_nodes``...)."""
        return self._any_running().rabbitmqctl_json("cluster_status")

    def running_nodes(self) -> list[str]:
        return sorted(self.status().get("running_nodes", []))

    def wait_running(self, count: int, timeout: float = 120) -> None:
        """Wait until ``count`` nodes are in ``running_nodes``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                running = self.running_nodes()
                if len(running) == count:
                    return
            except NodeError:
                running = None
            if time.monotonic() > deadline:
                raise NodeError(f"cluster: {running} running, wanted {count}")
            time.sleep(0.5)

    def node_of_connection(self, conn) -> Optional[int]:
        """Index (0-based) of the node a client is connected to, None if it is on none of them.

        ``conn`` is a kombu ``Connection`` (or py-amqp connection, or a socket): its socket's peer
        port tells the node.  An ``int`` is taken as the client's local port and looked up
        server-side with ``list_connections`` instead."""
        if isinstance(conn, int):
            for i, n in enumerate(self.nodes):
                if n.running() and any(int(c["peer_port"]) == conn for c in n.connections()):
                    return i
            return None
        port = client_socket(conn).getpeername()[1]
        for i, n in enumerate(self.nodes):
            if n.amqp_port == port:
                return i
        return None

    def stop_node(self, i: int) -> None:
        """Cleanly stop node ``i`` (0-based); the others notice it is down."""
        self.nodes[i].stop()

    def start_node(self, i: int) -> None:
        """Start node ``i`` again (it rejoins with its data) and wait until the cluster sees it."""
        self.nodes[i].start()
        self.wait_running(sum(1 for n in self.nodes if n.process_alive()))

    def heal(self) -> None:
        """Bring back every node a test stopped, killed or stop_app'ed."""
        broken = [n for n in self.nodes if not n.running()]
        if broken:
            _parallel([n.heal for n in broken])
            self.wait_running(len(self.nodes))

    def destroy(self) -> None:
        """Stop all nodes (in parallel) and remove the folder."""
        try:
            _parallel([n.destroy for n in self.nodes])
        finally:
            for n in self.nodes:
                n._terminate(grace=1)
            _live.discard(self)
            self.base.remove()

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.destroy()


def client_socket(conn) -> socket.socket:
    """The TCP socket under a kombu ``Connection`` / py-amqp ``Connection`` (or a socket)."""
    if isinstance(conn, socket.socket):
        return conn
    inner = getattr(conn, "connection", None)  # kombu Connection -> amqp.Connection
    for candidate in (inner, conn):
        transport = getattr(candidate, "transport", None) if candidate is not None else None
        transport = getattr(candidate, "_transport", None) or transport
        sock = getattr(transport, "sock", None)
        if isinstance(sock, socket.socket):
            return sock
    raise TypeError(f"cannot find the socket of {conn!r}")


# --------------------------------------------------------------------------------------------
# Pulse accounts
# --------------------------------------------------------------------------------------------


def pulse_permissions(user: str) -> tuple[str, str, str]:
    """(configure, write, read) exactly as PulseGuardian grants them on vhost ``/``."""
    own = f"^(queue/{user}/.*|exchange/{user}/.*)"
    return own, own, f"^(queue/{user}/.*|exchange/.*)"


class PulseUser(str):
    """A Pulse account's URL (so it can be passed wherever a URL goes), with ``.name``,
    ``.password``, ``.node`` and ``.admin_url`` (guest on the same node)."""

    name: str
    password: str
    node: "Node"

    def __new__(cls, url: str, *, name: str, password: str, node: "Node") -> "PulseUser":
        self = super().__new__(cls, url)
        self.name, self.password, self.node = name, password, node
        return self

    @property
    def url(self) -> str:
        return str.__str__(self)

    @property
    def admin_url(self) -> str:
        return self.node.url

    def queue(self, suffix: str) -> str:
        """``queue/<user>/<suffix>``, a name this user may create."""
        return f"queue/{self.name}/{suffix}"

    def exchange(self, suffix: str) -> str:
        """``exchange/<user>/<suffix>``, a name this user may create."""
        return f"exchange/{self.name}/{suffix}"

    def cleanup(self) -> None:
        """Delete the user's queues and exchanges (as guest), then the user."""
        import kombu

        queues = [q for q in self.node.queues("/", "messages") if q.startswith(f"queue/{self.name}/")]
        exchanges = [e for e in self.node.exchanges("/") if e.startswith(f"exchange/{self.name}/")]
        if queues or exchanges:
            with kombu.Connection(self.node.url, connect_timeout=10) as conn:
                channel = conn.channel()
                for q in queues:
                    channel.queue_delete(q)
                for e in exchanges:
                    channel.exchange_delete(e)
        self.node.delete_user(self.name)


# --------------------------------------------------------------------------------------------
# the machine's own broker: read-only
# --------------------------------------------------------------------------------------------


def system_broker_state(node: str = "rabbit@localhost") -> Optional[dict]:
    """Read-only facts about the machine's broker, to prove tests left it alone: its OS pid,
    uptime (s), vhosts and users.  None when it is not there.  Uses the ordinary ``rabbitmqctl``
    on PATH (the Debian wrapper, which switches to the rabbitmq user and its cookie)."""
    ctl = shutil.which("rabbitmqctl")
    if not ctl:
        return None

    def run(*args):
        res = subprocess.run([ctl, "-n", node, *args, "--formatter", "json"], capture_output=True,
                             text=True, timeout=CTL_TIMEOUT, stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            raise NodeError(res.stdout + res.stderr)
        return json.loads(res.stdout)

    try:
        status = run("status")
        return {
            "pid": status.get("pid"),
            "uptime": status.get("uptime"),
            "vhosts": sorted(v["name"] for v in run("list_vhosts")),
            "users": sorted((u["user"], tuple(sorted(u.get("tags") or []))) for u in run("list_users")),
        }
    except (NodeError, subprocess.TimeoutExpired, ValueError):
        return None


@atexit.register
def _stop_everything() -> None:
    """Last resort: a test run that ends without tearing its nodes down still stops them."""
    for thing in list(_live):
        try:
            if isinstance(thing, Cluster):
                thing.destroy()
        except Exception:  # noqa: BLE001
            pass
    for thing in list(_live):
        try:
            thing.destroy()
        except Exception:  # noqa: BLE001
            pass
