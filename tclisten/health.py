"""Liveness and metrics of a running listener over HTTP: ``/healthz`` and ``/metrics``.

Liveness is tied to real consumption (:meth:`tclisten.stats.Stats.healthy`): connected to the
broker, and when messages wait in the queue, some were acked recently.  ``/healthz`` answers
200 or 503 with a JSON body saying why; ``/metrics`` answers the listener's counters in the
Prometheus text exposition format, written here with the standard library, or through
``prometheus-client`` when it is installed (``pip install tclisten[prometheus]``), where
:func:`register_collector` also puts them in an application's own registry.

>>> from tclisten.stats import Stats
>>> stats = Stats()
>>> stats.received += 3
>>> [line for line in render_metrics(stats).splitlines() if line.startswith("tclisten_messages_received")]
['tclisten_messages_received_total 3']
>>> with HealthServer(stats, prometheus=False) as server:
...     server.url.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

from .exceptions import ConfigError
from .stats import Stats

logger = logging.getLogger(__name__)

__all__ = ["Family", "HealthServer", "StatsCollector", "families", "register_collector", "render_metrics"]

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_STALL_AFTER = 300.0


@dataclass(frozen=True)
class Family:
    """One metric family: ``samples`` are (suffix, value) pairs, the suffix added to ``name``
    (``""`` for counters' and gauges' single sample, ``"_sum"``/``"_count"`` for a summary)."""

    name: str
    type: str
    help: str
    samples: tuple[tuple[str, float], ...]


def _source(source: Any) -> tuple[Stats, str | None]:
    """The Stats of a Listener (and its name), or a Stats itself."""
    if isinstance(source, Stats):
        return source, None
    stats = getattr(source, "stats", None)
    if isinstance(stats, Stats):
        return stats, getattr(source, "name", None)
    raise ConfigError(f"health needs a Listener or a Stats, not {type(source).__name__}")


def families(stats: Stats, *, stall_after: float = DEFAULT_STALL_AFTER, now: float | None = None) -> list[Family]:
    """The metric families of one Stats, read once (pure: no I/O).

    >>> [f.name for f in families(Stats())][:2]
    ['tclisten_messages_received_total', 'tclisten_messages_acked_total']
    """
    lock = getattr(stats, "_lock", None)
    if lock is not None:
        with lock:  # the two halves of the latency summary change together
            calls, seconds = stats.handler_calls, stats.handler_seconds
    else:
        calls, seconds = stats.handler_calls, stats.handler_seconds
    healthy, _ = stats.healthy(stall_after, now=now)
    found = [
        Family("tclisten_messages_received_total", "counter",
               "Deliveries from the broker, redeliveries included.", (("", stats.received),)),
        Family("tclisten_messages_acked_total", "counter",
               "Deliveries acked (handled, or re-published for a retry or parked).", (("", stats.acked),)),
        Family("tclisten_messages_retried_total", "counter",
               "Messages re-published to wait for another attempt.", (("", stats.retried),)),
        Family("tclisten_messages_parked_total", "counter",
               "Messages parked after their last attempt or because nothing could handle them.",
               (("", stats.parked),)),
        Family("tclisten_unmatched_total", "counter",
               "Messages acked although no current binding explains them (a binding removed by a deploy).",
               (("", stats.unmatched),)),
        Family("tclisten_reconnects_total", "counter",
               "Connections to the broker after the first.", (("", max(stats.reconnects, 0)),)),
        Family("tclisten_handler_seconds", "summary",
               "Time spent handling one delivery (every matching handler).",
               (("_sum", seconds), ("_count", calls))),
        Family("tclisten_connected", "gauge", "1 while connected to the broker.",
               (("", int(bool(stats.connected_now))),)),
        Family("tclisten_healthy", "gauge", "1 while /healthz answers 200.", (("", int(healthy)),)),
        Family("tclisten_start_time_seconds", "gauge", "When the listener's counters started (Unix time).",
               (("", stats.started),)),
    ]
    for name, help_text, value in (
            ("tclisten_queue_backlog", "Messages ready in the listener's queue at the last check.", stats.backlog),
            ("tclisten_last_delivery_timestamp_seconds", "When the latest delivery arrived (Unix time).",
             stats.last_delivery),
            ("tclisten_last_ack_timestamp_seconds", "When the latest ack was sent (Unix time).", stats.last_ack)):
        if value is not None:  # unknown yet: no sample rather than a made-up zero
            found.append(Family(name, "gauge", help_text, (("", value),)))
    return found


def _number(value: float) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _help_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_metrics(source: Any, *, stall_after: float = DEFAULT_STALL_AFTER, now: float | None = None) -> str:
    """The Prometheus text exposition (format 0.0.4) of a Listener's or a Stats' counters;
    a Listener's samples carry its name as the ``listener`` label."""
    stats, name = _source(source)
    labels = f'{{listener="{_label_value(name)}"}}' if name else ""
    lines = []
    for family in families(stats, stall_after=stall_after, now=now):
        lines.append(f"# HELP {family.name} {_help_text(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        lines.extend(f"{family.name}{suffix}{labels} {_number(value)}" for suffix, value in family.samples)
    return "\n".join(lines) + "\n"


class StatsCollector:
    """A ``prometheus_client`` collector of a listener's counters (needs the optional
    ``prometheus-client``); :func:`register_collector` registers one.

    >>> from prometheus_client import CollectorRegistry, generate_latest  # doctest: +SKIP
    >>> registry = CollectorRegistry()                                    # doctest: +SKIP
    >>> register_collector(app, registry)                                 # doctest: +SKIP
    """

    def __init__(self, source: Any, *, stall_after: float = DEFAULT_STALL_AFTER) -> None:
        self._stats, self._name = _source(source)
        self.stall_after = stall_after

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

        label_names = ["listener"] if self._name else []
        label_values = [self._name] if self._name else []
        for family in families(self._stats, stall_after=self.stall_after):
            values = dict(family.samples)
            if family.type == "counter":
                counter = CounterMetricFamily(family.name, family.help, labels=label_names)
                counter.add_metric(label_values, values[""])
                yield counter
            elif family.type == "summary":
                summary = SummaryMetricFamily(family.name, family.help, labels=label_names)
                summary.add_metric(label_values, count_value=int(values["_count"]), sum_value=values["_sum"])
                yield summary
            else:
                gauge = GaugeMetricFamily(family.name, family.help, labels=label_names)
                gauge.add_metric(label_values, values[""])
                yield gauge


def _prometheus_client() -> Any:
    try:
        import prometheus_client
    except ImportError:
        return None
    return prometheus_client


def register_collector(source: Any, registry: Any = None, *,
                       stall_after: float = DEFAULT_STALL_AFTER) -> StatsCollector:
    """Register a :class:`StatsCollector` of ``source`` (a Listener or Stats) with a
    ``prometheus_client`` registry (its default registry when None), for applications that
    already serve their own metrics.  One collector per listener and registry (the metric
    names are fixed, so a second listener needs a registry of its own).

    >>> from prometheus_client import start_http_server      # doctest: +SKIP
    >>> register_collector(app)                               # doctest: +SKIP
    >>> start_http_server(9464)                               # doctest: +SKIP
    """
    client = _prometheus_client()
    if client is None:
        raise ConfigError("register_collector needs prometheus-client: pip install 'tclisten[prometheus]'")
    collector = StatsCollector(source, stall_after=stall_after)
    (registry if registry is not None else client.REGISTRY).register(collector)
    return collector


class _Server(ThreadingHTTPServer):
    """Serves one :class:`HealthServer`'s pages (``_Handler`` reads it as ``server.health``)."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, health: HealthServer, address: tuple[str, int]) -> None:
        self.health = health
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - per-request lines at debug only
        logger.debug("health %s - " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 - the http.server convention
        self._answer(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(head=True)

    def _answer(self, head: bool) -> None:
        health: HealthServer = self.server.health
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            status, content_type, body = health.healthz()
        elif path == "/metrics":
            content_type, body = health.metrics()
            status = 200
        else:
            status, content_type = 404, "application/json"
            body = json.dumps({"error": f"no such page {path!r}; try /healthz or /metrics"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)


class HealthServer:
    """Serves ``/healthz`` and ``/metrics`` of a Listener (or a bare Stats) from a daemon
    thread; loopback by default.

    ``stall_after``: seconds without an ack, while messages wait, before ``/healthz`` says
    503.  ``prometheus``: None uses ``prometheus-client`` for ``/metrics`` when it is
    installed, False always uses the built-in writer, True requires the package.

    >>> from tclisten.stats import Stats
    >>> server = HealthServer(Stats(), port=0).start()
    >>> server.healthz()[0]          # not connected to any broker
    503
    >>> server.stop()
    """

    def __init__(self, source: Any, *, host: str = "127.0.0.1", port: int = 0,
                 stall_after: float = DEFAULT_STALL_AFTER, prometheus: bool | None = None) -> None:
        self.stats, self.listener = _source(source)
        self._source = source
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ConfigError(f"health port must be an integer from 0 to 65535, not {port!r}")
        if not isinstance(stall_after, (int, float)) or isinstance(stall_after, bool) or stall_after <= 0:
            raise ConfigError(f"stall_after must be seconds > 0, not {stall_after!r}")
        self.host = host
        self._port = port
        self.stall_after = float(stall_after)
        client = _prometheus_client() if prometheus is not False else None
        if prometheus and client is None:
            raise ConfigError("HealthServer(prometheus=True) needs prometheus-client: "
                              "pip install 'tclisten[prometheus]'")
        self._registry = None
        if client is not None:
            self._registry = client.CollectorRegistry(auto_describe=False)
            self._registry.register(StatsCollector(source, stall_after=self.stall_after))
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self._server else "not serving"
        return f"<HealthServer {self.listener or 'stats'} {where}>"

    # -- the answers (usable without HTTP) -----------------------------------------------------

    def healthz(self, now: float | None = None) -> tuple[int, str, bytes]:
        """(status, content type, body) of ``/healthz``."""
        stats = self.stats
        healthy, reason = stats.healthy(self.stall_after, now=now)
        body = {"healthy": healthy, "reason": reason, "listener": self.listener,
                "connected": bool(stats.connected_now), "backlog": stats.backlog,
                "received": stats.received, "acked": stats.acked, "last_ack": stats.last_ack,
                "checked_at": time.time() if now is None else now}
        return (200 if healthy else 503), "application/json", json.dumps(body).encode()

    def metrics(self) -> tuple[str, bytes]:
        """(content type, body) of ``/metrics``."""
        if self._registry is not None:
            from prometheus_client import generate_latest

            # the classic text format (0.0.4), which every scraper reads; our names need no escaping
            return TEXT_CONTENT_TYPE, generate_latest(self._registry)
        return TEXT_CONTENT_TYPE, render_metrics(self._source, stall_after=self.stall_after).encode()

    # -- serving ----------------------------------------------------------------------------

    def start(self) -> "HealthServer":
        if self._server is not None:
            raise ConfigError("HealthServer is already serving")
        try:
            server = _Server(self, (self.host, self._port))
        except OSError as exc:
            raise ConfigError(f"cannot serve health on {self.host}:{self._port}: {exc}", host=self.host,
                              port=self._port) from exc
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="tclisten-health", daemon=True)
        self._thread.start()
        logger.info("health and metrics on http://%s:%d/healthz and /metrics", self.host, self.port)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> "HealthServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port served (the one the OS chose when created with ``port=0``)."""
        if self._server is None:
            return self._port
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"
