"""The commands that act on the broker for an operator: parked messages, ``bindings --diff``,
``delete``, ``migrate``, ``publish`` and ``record``.

A target is loaded for inspection (its ``app.run()`` does not consume, its handler-only
settings may name unset variables), then the broker is tried once (``--wait-for-broker``
to wait longer): an unreachable broker or a refused login is one line naming host, port,
vhost and user, never the password.  What deletes asks first (``--yes`` to skip the
question; without a terminal and without ``--yes`` nothing is deleted).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import importlib.util
import json
import os
import sys
import time
import uuid
from typing import Any, Callable, Iterator, Sequence, TextIO, TypeVar

from ..exceptions import BrokerError, ConfigError
from .overrides import collect, listener_values
from .targets import UsageError, load_target

__all__ = ["Progress", "cmd_bindings_diff", "cmd_delete", "cmd_migrate", "cmd_parked_drop", "cmd_parked_list",
           "cmd_parked_requeue", "cmd_publish", "cmd_record", "confirm", "load_for_inspection"]

T = TypeVar("T")
EXIT_OK, EXIT_FAILURE = 0, 1
BODY_SHOWN = 300  # characters of a body in the text listing
TRACEBACK_SHOWN = 12  # last lines of the last failure's traceback in the text listing


# --------------------------------------------------------------------------- shared


def load_for_inspection(args: argparse.Namespace, *, lenient: bool = True) -> tuple[Any, Any]:
    """The target's listener with ``--broker-url`` and the ``TCLISTEN_*`` overrides, loaded
    so that nothing consumes."""
    from .running import configure_logging

    values = collect(args, os.environ)
    app, config = load_target(args.target, overrides=listener_values(values), lenient=lenient)
    if config is not None and (config.log_level or config.log_format):  # the file's, where the command line is silent
        configure_logging(getattr(args, "log_level", None) or config.log_level or "WARNING", config.log_format)
    return app, config


def _address(app_or_address: Any) -> Any:
    address = getattr(app_or_address, "address", app_or_address)
    if address is None:
        raise ConfigError("no broker: give --broker-url (or TCLISTEN_BROKER_URL), or Pulse credentials "
                          "(PULSE_USERNAME and PULSE_PASSWORD)")
    return address


def reach(app_or_address: Any, args: argparse.Namespace, heartbeat: int = 60) -> Any:
    """Wait for the broker as ``--wait-for-broker`` says (default: one try, whatever
    ``TCLISTEN_WAIT_FOR_BROKER`` says for runs) and return its address."""
    from ..broker import wait_for_broker

    address = _address(app_or_address)
    if not address.memory:
        wait_for_broker(address, heartbeat=getattr(app_or_address, "heartbeat", heartbeat),
                        limit=getattr(args, "wait_for_broker", 0.0))
    return address


@contextlib.contextmanager
def broker_errors(address: Any) -> Iterator[None]:
    """Turn what kombu and py-amqp raise into one BrokerError line (no password)."""
    from amqp.exceptions import AMQPError
    from kombu.exceptions import KombuError

    from ..broker import describe_error

    try:
        yield
    except BrokerError:
        raise
    except (AMQPError, KombuError, OSError) as exc:
        raise BrokerError(describe_error(exc, address)) from exc


def _call(app: Any, args: argparse.Namespace, fn: Callable[[], T]) -> T:
    address = reach(app, args)
    with broker_errors(address):
        return fn()


def confirm(question: str, yes: bool, stdin: TextIO | None = None) -> bool:
    """Ask ``question [y/N]`` on the terminal; True with ``--yes``.  Without a terminal (a
    pipe, a cron job) and without ``--yes``, refuse: nothing is deleted by accident."""
    if yes:
        return True
    stdin = stdin or sys.stdin
    if not stdin.isatty():
        raise UsageError(f"{question} needs an answer: stdin is not a terminal, pass --yes to go ahead")
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = stdin.readline().strip().lower()
    return answer in ("y", "yes")


# --------------------------------------------------------------------------- parked


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(float(seconds), tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _selector(args: argparse.Namespace) -> Any:
    """The filter the command line gives (None: every parked message)."""
    from ..parked import select

    criteria = {key: getattr(args, key, None) for key in ("position", "task_id", "handler", "reason", "exchange")}
    criteria = {key: value for key, value in criteria.items() if value is not None}
    return select(**criteria) if criteria else None


def _body_text(item: Any) -> str:
    if item.raw:
        text = item.body if isinstance(item.body, str) else repr(item.body)
        label = "body (not JSON, shown raw)"
    else:
        try:
            text = json.dumps(item.body, sort_keys=True, default=str)
        except (ValueError, TypeError, RecursionError):
            text = repr(item.body)
        label = "body"
    cut = f" ... ({len(text)} characters)" if len(text) > BODY_SHOWN else ""
    return f"  {label}: {text[:BODY_SHOWN]}{cut}"


def _describe(item: Any) -> list[str]:
    """A parked message for people: where from, when, why, the last failure and its traceback."""
    lines = [f"#{item.position} {item.exchange} {item.routing_key}"]
    if item.task_id:
        lines.append(f"  task: {item.task_id}")
    handlers = f"; handlers: {', '.join(item.handlers)}" if item.handlers else ""
    lines.append(f"  parked: {_when(item.parked_at)} after {item.attempts} attempt(s){handlers}")
    reason = item.reason.splitlines() if item.reason else ["-"]
    lines.append(f"  reason: {reason[0]}" + (f" (+{len(reason) - 1} lines)" if len(reason) > 1 else ""))
    if item.failures:
        last = item.failures[-1]
        first = (last.message or "").splitlines()[0] if last.message else ""
        lines.append(f"  last failure: {last.handler} {last.type} at {_when(last.at)}: {first}"
                     + (f" ({len(item.failures)} failures kept; --json shows all)" if len(item.failures) > 1 else ""))
        trace = (last.traceback or "").rstrip().splitlines()
        if len(trace) > TRACEBACK_SHOWN:
            lines.append(f"    ... ({len(trace) - TRACEBACK_SHOWN} lines more with --json)")
        lines.extend(f"    {line}" for line in trace[-TRACEBACK_SHOWN:])
    lines.append(_body_text(item))
    return lines


def _json_line(item: Any) -> str:
    data = item.to_json()
    try:
        return json.dumps(data, default=str)
    except (ValueError, TypeError, RecursionError):  # what cannot be encoded is shown as text
        data["body"], data["raw_body"] = repr(item.body)[:100_000], True
        return json.dumps(data, default=str)


def cmd_parked_list(args: argparse.Namespace) -> int:
    app, _ = load_for_inspection(args)
    where = _selector(args)
    items = _call(app, args, lambda: app.parked(limit=args.limit, where=where))
    for item in items:
        if args.json:
            print(_json_line(item))
        else:
            print("\n".join(_describe(item)))
    matching = " matching" if where is not None else ""
    print(f"{len(items)} parked message(s){matching} in {app.topology.parked_name}", file=sys.stderr)
    return EXIT_OK


def _chosen(args: argparse.Namespace, verb: str) -> Any:
    where = _selector(args)
    if where is None and not args.all:
        raise UsageError(f"parked {verb}: say which messages: --all, or --position, --task-id, --handler, "
                         "--reason or --exchange")
    if where is not None and args.all:
        raise UsageError(f"parked {verb}: give --all or a filter, not both")
    return where


def cmd_parked_requeue(args: argparse.Namespace) -> int:
    app, _ = load_for_inspection(args)
    where = _chosen(args, "requeue")
    moved = _call(app, args, lambda: app.requeue_parked(limit=args.limit, where=where))
    print(f"requeued {moved} parked message(s) into {app.queue_name}")
    return EXIT_OK


def cmd_parked_drop(args: argparse.Namespace) -> int:
    app, _ = load_for_inspection(args)
    where = _chosen(args, "drop")
    count = len(_call(app, args, lambda: app.parked(limit=args.limit, where=where)))
    if not count:
        print(f"no parked message to drop in {app.topology.parked_name}")
        return EXIT_OK
    if not confirm(f"drop {count} parked message(s) of {app.topology.parked_name} for good?", args.yes):
        print("nothing dropped", file=sys.stderr)
        return EXIT_FAILURE
    dropped = _call(app, args, lambda: app.drop_parked(limit=args.limit, where=where))
    print(f"dropped {dropped} parked message(s) of {app.topology.parked_name}")
    return EXIT_OK


# --------------------------------------------------------------------------- bindings --diff


def cmd_bindings_diff(args: argparse.Namespace) -> int:
    from ..declare import read_bindings_state

    app, _ = load_for_inspection(args)
    address = reach(app, args)
    code = {(b.exchange, b.pattern): b.handler for b in app.bindings}
    recorded: set[tuple[str, str]] | None = None
    with broker_errors(address), app.connection() as conn:
        channel = conn.channel()
        try:  # fetched unacked: closing the channel puts the record back
            state = read_bindings_state(channel, app.topology)
            recorded = state.pairs if state.messages else None
        except conn.channel_errors:
            recorded = None  # no bindings queue: the listener never started
        finally:
            with contextlib.suppress(Exception):
                channel.close()
    print(f"queue: {app.queue_name}")
    if recorded is None:
        print("no bindings recorded yet (never started, or by a tclisten that kept none): the next start "
              "adds every binding and removes none")
        recorded = set()
    rows = []
    for pair in sorted(set(code) | recorded):
        if pair in code and pair in recorded:
            mark = " "
        elif pair in code:
            mark = "+"
        else:
            mark = "-" if app.prune_bindings else "="
        rows.append((mark, *pair, code.get(pair, "(removed from the code)" if mark == "-" else
                                    "(kept: prune_bindings is off)")))
    width = [max((len(r[i]) for r in rows), default=0) for i in (1, 2)]
    for mark, exchange, pattern, handler in rows:
        print(f"{mark} {exchange:<{width[0]}}  {pattern:<{width[1]}}  {handler}".rstrip())
    added = sum(1 for r in rows if r[0] == "+")
    removed = sum(1 for r in rows if r[0] == "-")
    print(f"the next start adds {added} and removes {removed} binding(s)", file=sys.stderr)
    return EXIT_OK


# --------------------------------------------------------------------------- delete and migrate


def cmd_delete(args: argparse.Namespace) -> int:
    app, _ = load_for_inspection(args)
    names = app.queue_names()
    exchange = app.topology.exchange.name
    address = reach(app, args)
    for name in names:
        print(f"  queue {name}", file=sys.stderr)
    if not confirm(f"delete {len(names)} queues and exchange {exchange}?", args.yes):
        print("nothing deleted", file=sys.stderr)
        return EXIT_FAILURE
    with broker_errors(address), app.connection() as conn:
        channel = conn.channel()
        for name in names:
            dropped = channel.queue_delete(name)
            print(f"deleted queue {name}" + (f" and its {dropped} message(s)" if dropped else ""))
        channel.exchange_delete(exchange)
        print(f"deleted exchange {exchange}")
        channel.close()
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("tclisten.migrate") is None:
        print("tclisten migrate: this installation cannot migrate queues (module tclisten.migrate is missing)",
              file=sys.stderr)
        return EXIT_FAILURE
    migrate = importlib.import_module("tclisten.migrate").migrate
    app, _ = load_for_inspection(args)
    address = reach(app, args)
    with broker_errors(address):
        counts = migrate(app, args.queue_type, log=lambda text: print(text, file=sys.stderr, flush=True))
    moved = ", ".join(f"{name}: {n}" for name, n in counts.items()) or "nothing to move"
    print(f"migrated the queues of {app.name} to {args.queue_type} ({moved})")
    return EXIT_OK


# --------------------------------------------------------------------------- publish and record


def _field(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"--fields {text!r}: expected name=value")
    try:
        decoded = json.loads(value)  # runId=1, routes=["a"], ...
    except ValueError:
        decoded = value
    return key, value if isinstance(decoded, str) else decoded


def _samples(args: argparse.Namespace, topic: Any) -> Iterator[tuple[Any, str, dict]]:
    """``(body, routing key, headers)`` of each message to publish."""
    from ..testing.factories import message_for

    fields = dict(_field(text) for text in args.fields or ())
    routes = list(args.route or ())
    cc = {"CC": [f"route.{route}" for route in routes]} if routes else {}
    if args.file:
        try:
            with open(args.file, encoding="utf-8") as stream:
                body = json.load(stream)
        except ValueError as exc:
            raise UsageError(f"--file {args.file}: not JSON ({exc})") from None
        if fields:
            raise UsageError("--fields build a sample message: give either --fields or --file")
        if args.routing_key is None:
            raise UsageError("--file needs --routing-key (the key to publish under)")
        for _ in range(args.count):
            yield body, args.routing_key, dict(cc)
        return
    if getattr(topic, "schema", None) is None and not hasattr(topic, "route_pattern"):
        raise UsageError(f"{topic.exchange} has no bundled reference, so no sample message: give --file body.json "
                         "and --routing-key")
    if routes:
        fields["routes"] = routes
    for _ in range(args.count):
        try:
            message = message_for(topic.exchange, **fields)
        except TypeError as exc:
            raise UsageError(f"--fields: {exc}") from None
        yield message.body, args.routing_key or message.routing_key, dict(message.headers)


def cmd_publish(args: argparse.Namespace) -> int:
    from kombu import Exchange, Producer

    from ..broker import BrokerAddress, connect
    from ..topics import resolve

    topic = resolve(args.exchange)
    address = reach(BrokerAddress.resolve(getattr(args, "broker_url", None)), args)
    samples = list(_samples(args, topic))
    with broker_errors(address), connect(address, heartbeat=60) as conn:
        channel = conn.channel()
        exchange = Exchange(topic.exchange, "topic", durable=True, passive=not args.declare_exchange)
        try:
            exchange(channel).declare()
        except conn.channel_errors as exc:
            raise BrokerError(f"exchange {topic.exchange!r} does not exist on {address.where()} ({exc}); "
                              "--declare-exchange declares it (a local broker only)", exchange=topic.exchange) from exc
        producer = Producer(channel)
        for body, routing_key, headers in samples:
            producer.publish(json.dumps(body).encode("utf-8"), exchange=topic.exchange, routing_key=routing_key,
                             headers=headers, content_type="application/json", content_encoding="utf-8",
                             delivery_mode=2, retry=False)
            print(routing_key)
        channel.close()
    print(f"published {len(samples)} message(s) to {topic.exchange} on {address.where()}", file=sys.stderr)
    return EXIT_OK


class Progress:
    """A count on stderr every ``every`` items, and the rate at the end."""

    def __init__(self, label: str, every: int, stream: TextIO) -> None:
        self.label, self.every, self.stream = label, every, stream
        self.count = 0
        self.started = time.monotonic()

    def tick(self) -> None:
        self.count += 1
        if self.every and self.count % self.every == 0:
            print(f"{self.label} {self.count} messages ...", file=self.stream, flush=True)

    def rate(self) -> str:
        elapsed = time.monotonic() - self.started
        return f"{elapsed:.1f}s" + (f", {self.count / elapsed:.0f}/s" if elapsed > 0 and self.count else "")


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return str(value)


def _check_exchanges(conn: Any, exchanges: Sequence[str]) -> None:
    """Pulse exchanges belong to their publishers: check that each exists, never declare one."""
    from kombu import Exchange

    for name in exchanges:
        try:
            with conn.channel() as check:
                Exchange(name, "topic", passive=True)(check).declare()
        except conn.channel_errors as exc:
            raise BrokerError(f"exchange {name!r} does not exist ({exc})", exchange=name) from exc


def _as_record(message: Any) -> dict[str, Any]:
    """A delivery as ``tclisten record`` writes it: exchange, routing_key, body (the JSON, else
    the text) and headers."""
    info = message.delivery_info
    try:
        body: Any = json.loads(message.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        body = message.body.decode("utf-8", "replace") if isinstance(message.body, bytes) else message.body
    return {"exchange": info.get("exchange", ""), "routing_key": info.get("routing_key", ""),
            "body": body, "headers": dict(message.headers or {})}


def cmd_record(args: argparse.Namespace) -> int:
    from kombu import Consumer, Exchange, Queue, binding

    from ..app import Listener
    from ..topics import resolve

    exchanges = [resolve(name).exchange for name in args.exchange]
    probe = Listener(f"record-{uuid.uuid4().hex[:12]}", broker_url=getattr(args, "broker_url", None))
    queue_name = probe.queue_name  # queue/<user>/record-<random>: a name Pulse lets us own
    address = reach(probe, args)
    output = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    progress = Progress("recorded", args.progress, sys.stderr)
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
        with broker_errors(address), probe.connection() as conn:
            _check_exchanges(conn, exchanges)
            queue = Queue(queue_name, bindings=[binding(Exchange(name, "topic", passive=True),
                                                        routing_key=args.pattern) for name in exchanges],
                          exclusive=True, auto_delete=True, durable=False)

            def on_message(message: Any) -> None:
                if args.count and progress.count >= args.count:
                    return  # prefetched beyond --count: left unacked, dropped with the queue
                output.write(json.dumps(_as_record(message), default=_json_default, sort_keys=True) + "\n")
                output.flush()
                message.ack()
                progress.tick()

            with Consumer(conn.channel(), queues=[queue], on_message=on_message, prefetch_count=100):
                print(f"recording {', '.join(exchanges)} pattern {args.pattern!r} through {queue_name}"
                      + (f" until {args.count} messages" if args.count else " (Ctrl-C to stop)"),
                      file=sys.stderr, flush=True)
                while not args.count or progress.count < args.count:
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    try:
                        conn.drain_events(timeout=0.5)
                    except TimeoutError:
                        continue
    except KeyboardInterrupt:
        pass  # Ctrl-C ends an open-ended recording normally
    finally:
        if output is not sys.stdout:
            output.close()
    where = "stdout" if args.output == "-" else args.output
    print(f"recorded {progress.count} messages to {where} ({progress.rate()})", file=sys.stderr)
    if args.count and progress.count < args.count:
        print(f"error: timed out after {args.timeout:g}s with {progress.count} of {args.count} messages",
              file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
