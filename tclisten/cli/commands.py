"""The ``tclisten`` command.

::

    tclisten run listener.yaml               # or  module:app  or  script.py
    tclisten bindings listener.yaml          # the queue and its bindings, no broker needed
    tclisten replay messages.jsonl listener.yaml
    tclisten record --exchange QueueEvents.taskFailed --count 10 --output failed.jsonl
    tclisten references import https://tc.example.com --dest references/
    tclisten references check references/
    tclisten parked list listener.yaml       # / parked requeue listener.yaml --limit 10
    tclisten demo

Exit status: 0 done, 1 the work failed (a handler failed on replay, the broker refused, ...),
2 the command line or the configuration is wrong.  Errors are one line on stderr; ``--debug``
adds the traceback.  Only this module configures logging (``--log-level``).

>>> main(["bindings", "--help"])                  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import sys
import time
import traceback
import uuid
from typing import Any, Callable, Iterator, Sequence, TextIO

from ..exceptions import (
    BrokerError, ConfigError, ReferenceFormatError, TaskclusterTopicExchangeFailure, TclistenError,
)
from .targets import UsageError, load_target

logger = logging.getLogger(__name__)

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "load_target", "main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


# --------------------------------------------------------------------------- helpers


class _Progress:
    """A count on stderr every ``every`` items, and a final line."""

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


def _exchange_spec(exchange: str) -> Any:
    """The reference entry of a full exchange name, or None for an exchange we don't know."""
    from ..taskcluster.references import ExchangesReference, bundled

    for ref in bundled().values():
        if isinstance(ref, ExchangesReference) and exchange.startswith(ref.exchange_prefix):
            for entry in ref.exchanges:
                if ref.exchange_prefix + entry.exchange == exchange:
                    return entry
    return None


def catch_all(exchange: str, pattern: str) -> bool:
    """True when ``pattern`` takes every message of ``exchange`` (or every routed one):
    nothing but ``*``/``#`` once the routing key's constant words are set aside.

    >>> catch_all("exchange/taskcluster-queue/v1/task-failed", "primary.*.*.*.*.*.*.*.*.#")
    True
    >>> catch_all("exchange/taskcluster-queue/v1/task-failed", "primary.*.*.*.*.*.*.*.G.#")
    False
    """
    words = pattern.split(".")
    if words[0] == "route":
        return all(w in ("*", "#") for w in words[1:])
    spec = _exchange_spec(exchange)
    constants = [w.constant for w in spec.routing_key] if spec is not None else []
    for index, word in enumerate(words):
        if word in ("*", "#"):
            continue
        if index < len(constants) and constants[index] == word:
            continue
        return False
    return True


def _topic_exchange(name: str) -> str:
    """A full exchange name from ``QueueEvents.taskFailed`` or the full name itself."""
    if name.startswith("exchange/") or "." not in name:
        return name
    from ..exchanges import exchanges_class

    cls, _, entry = name.partition(".")
    try:
        return exchanges_class(cls).topic(entry).exchange
    except KeyError as exc:
        raise UsageError(f"--exchange {name}: {exc.args[0]}") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return str(value)


# --------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace) -> int:
    app, _ = _load(args)
    app.run()
    return EXIT_OK


def cmd_bindings(args: argparse.Namespace) -> int:
    app, _ = _load(args)
    bindings = app.bindings
    if args.json:
        print(json.dumps({"queue": app.queue_name, "bindings": [
            {"exchange": b.exchange, "pattern": b.pattern, "handler": b.handler} for b in bindings]}, indent=2))
    else:
        print(f"queue: {app.queue_name}")
        rows = [("EXCHANGE", "PATTERN", "HANDLER")] + [(b.exchange, b.pattern, b.handler) for b in bindings]
        widths = [max(len(row[i]) for row in rows) for i in range(2)]
        for row in rows:
            print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}".rstrip())
    for b in bindings:
        if catch_all(b.exchange, b.pattern):
            what = "every routed message of" if b.pattern.startswith("route.") else "every message of"
            print(f"warning: {b.handler} gets {what} {b.exchange} (pattern {b.pattern!r}); "
                  "give routing-key fields or a route to narrow it", file=sys.stderr)
    return EXIT_OK


def _lines(stream: TextIO, whole: bool) -> Iterator[tuple[int, Any, str | None]]:
    """``(number, decoded JSON, problem)``: one per line of JSON lines, or, for a ``.json``
    file, one per record of the document (a record or a list of records)."""
    if whole:
        try:
            document = json.load(stream)
        except ValueError as exc:
            yield 1, None, f"not JSON ({exc})"
            return
        for number, item in enumerate(document if isinstance(document, list) else [document], 1):
            yield number, item, None
        return
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line), None
        except ValueError as exc:
            yield number, None, f"not JSON ({exc})"


def _records(stream: TextIO, whole: bool = False) -> Iterator[tuple[int, Any, str | None]]:
    """``(number, record or None, problem or None)`` for each message of the file."""
    for number, record, problem in _lines(stream, whole):
        if problem is not None:
            yield number, None, problem
            continue
        if not isinstance(record, dict) or not isinstance(record.get("exchange"), str) \
                or not isinstance(record.get("routing_key"), str) or "body" not in record:
            yield number, None, "expected an object with exchange, routing_key, body (and headers)"
            continue
        if record.get("headers") is not None and not isinstance(record["headers"], dict):
            yield number, None, "headers must be an object"
            continue
        yield number, record, None


def cmd_replay(args: argparse.Namespace) -> int:
    app, _ = _load(args)
    counts = {"handled": 0, "failed": 0, "unmatched": 0, "invalid": 0}
    progress = _Progress("replayed", args.progress, sys.stderr)
    stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
    try:
        for number, record, problem in _records(stream, whole=args.file.endswith(".json")):
            progress.tick()
            if record is None:
                counts["invalid"] += 1
                print(f"{args.file}:{number}: {problem}", file=sys.stderr)
                continue
            outcome = app.dispatch(record["exchange"], record["routing_key"], record["body"],
                                   record.get("headers"))
            if outcome.failed:
                counts["failed"] += 1
                for handler, error in outcome.failed:
                    first = error.splitlines()[0] if error else ""
                    print(f"{args.file}:{number}: {handler} failed: {first}", file=sys.stderr)
            elif outcome.handled:
                counts["handled"] += 1
            elif outcome.park_reason and outcome.park_reason.startswith("no binding"):
                counts["unmatched"] += 1
            else:
                counts["failed"] += 1
                print(f"{args.file}:{number}: {outcome.park_reason}", file=sys.stderr)
    finally:
        if stream is not sys.stdin:
            stream.close()
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n or k != "invalid")
    print(f"replayed {progress.count} messages ({progress.rate()}): {summary}")
    return EXIT_FAILURE if counts["failed"] or counts["invalid"] else EXIT_OK


def cmd_record(args: argparse.Namespace) -> int:
    from kombu import Consumer, Exchange, Queue, binding

    from ..app import Listener

    exchanges = [_topic_exchange(name) for name in args.exchange]
    probe = Listener(f"record-{uuid.uuid4().hex[:12]}", broker_url=args.broker_url)
    queue_name = probe.queue_name  # queue/<user>/record-<random>: a name Pulse lets us own
    conn = probe.connection()
    output = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    progress = _Progress("recorded", args.progress, sys.stderr)
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
        try:
            conn.ensure_connection(max_retries=2)
        except Exception as exc:  # refused, unreachable, bad login: one BrokerError (no password)
            raise BrokerError(f"cannot connect to {conn.as_uri()}: {exc}") from exc
        for name in exchanges:  # Pulse exchanges belong to their publishers: check, never declare
            try:
                with conn.channel() as check:
                    Exchange(name, "topic", passive=True)(check).declare()
            except conn.channel_errors as exc:
                raise BrokerError(f"exchange {name!r} does not exist ({exc})", exchange=name) from exc
        channel = conn.channel()
        queue = Queue(queue_name, bindings=[binding(Exchange(name, "topic", passive=True), routing_key=args.pattern)
                                            for name in exchanges],
                      exclusive=True, auto_delete=True, durable=False)

        def on_message(message: Any) -> None:
            if args.count and progress.count >= args.count:
                return  # prefetched beyond --count: left unacked, dropped with the queue
            info = message.delivery_info
            try:
                body: Any = json.loads(message.body)
            except (ValueError, UnicodeDecodeError):
                body = message.body.decode("utf-8", "replace") if isinstance(message.body, bytes) else message.body
            record = {"exchange": info.get("exchange", ""), "routing_key": info.get("routing_key", ""),
                      "body": body, "headers": dict(message.headers or {})}
            output.write(json.dumps(record, default=_json_default, sort_keys=True) + "\n")
            output.flush()
            message.ack()
            progress.tick()

        with Consumer(channel, queues=[queue], on_message=on_message, prefetch_count=100):
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
        conn.release()
        if output is not sys.stdout:
            output.close()
    where = "stdout" if args.output == "-" else args.output
    print(f"recorded {progress.count} messages to {where} ({progress.rate()})", file=sys.stderr)
    if args.count and progress.count < args.count:
        print(f"error: timed out after {args.timeout:g}s with {progress.count} of {args.count} messages",
              file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_references_import(args: argparse.Namespace) -> int:
    from ..taskcluster.references import import_references

    written = import_references(args.sources, args.dest)
    files = [p for p in written if p.name != "manifest.json"]
    print(f"wrote {len(files)} references and manifest.json to {args.dest}", file=sys.stderr)
    for path in written:
        print(path)
    return EXIT_OK


def cmd_references_check(args: argparse.Namespace) -> int:
    from ..taskcluster.references import ExchangesReference, load

    refs = load(args.source)
    apis = exchanges = functions = topics = 0
    for name in sorted(refs):
        ref = refs[name]
        if isinstance(ref, ExchangesReference):
            exchanges += 1
            topics += len(ref.exchanges)
            print(f"{name:<24} exchanges  {ref.api_version:<4} {len(ref.exchanges):>4} exchanges")
        else:
            apis += 1
            functions += len(ref.functions)
            print(f"{name:<24} api        {ref.api_version:<4} {len(ref.functions):>4} functions")
    print(f"{args.source}: {len(refs)} references valid: {apis} APIs ({functions} functions), "
          f"{exchanges} exchanges references ({topics} exchanges)")
    return EXIT_OK


def cmd_parked_list(args: argparse.Namespace) -> int:
    app, _ = _load(args)
    parked = app.parked(limit=args.limit)
    for item in parked:
        if args.json:
            print(json.dumps({"exchange": item.exchange, "routing_key": item.routing_key, "body": item.body,
                              "reason": item.reason, "attempts": item.attempts}, default=_json_default))
        else:
            print(f"{item.exchange} {item.routing_key} attempts={item.attempts} reason: "
                  f"{item.reason.splitlines()[0] if item.reason else '-'}")
    print(f"{len(parked)} parked message(s) in {app.queue_name}/parked", file=sys.stderr)
    return EXIT_OK


def cmd_parked_requeue(args: argparse.Namespace) -> int:
    app, _ = _load(args)
    moved = app.requeue_parked(limit=args.limit)
    print(f"requeued {moved} parked message(s) into {app.queue_name}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("tclisten.cli.demo") is None:
        print("tclisten demo: this installation has no demo (module tclisten.cli.demo is missing)", file=sys.stderr)
        return EXIT_FAILURE
    demo = importlib.import_module("tclisten.cli.demo")
    try:
        result = demo.main(list(args.demo_args))
    except SystemExit as exc:  # the demo's own --help and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return EXIT_OK if result is None else int(result)


# --------------------------------------------------------------------------- parser


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    app, config = load_target(args.target)
    if config is not None:  # the file's logging section, where the command line is silent
        root = logging.getLogger()
        if config.log_level and getattr(args, "log_level", None) is None:
            root.setLevel(config.log_level)
        if config.log_format:
            for handler in root.handlers:
                if isinstance(handler, _StderrHandler):
                    handler.setFormatter(logging.Formatter(config.log_format))
    return app, config


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper,
                        default=argparse.SUPPRESS, help="logging level (default: the file's, or INFO for run)")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="print tracebacks with errors")
    target_help = "listener.yaml, package.module[:attr] or script.py[:attr]"

    parser = argparse.ArgumentParser(
        prog="tclisten", parents=[common],
        description="React to Taskcluster's Pulse messages: run, inspect and test listeners.",
        epilog="Exit status: 0 ok, 1 failure, 2 bad command line or configuration.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str, **kw: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_, description=help_, **kw)
        p.set_defaults(func=func)
        return p

    p = add("run", cmd_run, "consume and handle messages until SIGINT/SIGTERM")
    p.add_argument("target", help=target_help)

    p = add("bindings", cmd_bindings, "print the queue and each binding, without connecting")
    p.add_argument("target", help=target_help)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("replay", cmd_replay, "run recorded messages (JSON lines) through the handlers, no broker")
    p.add_argument("file", help="JSON lines of {exchange, routing_key, body, headers} (- for stdin), "
                                "or a .json file of one record or a list of them")
    p.add_argument("target", help=target_help)
    p.add_argument("--progress", type=_positive, default=1000, metavar="N", help="a count on stderr every N")

    p = add("record", cmd_record, "save live messages as JSON lines (temporary exclusive queue)")
    p.add_argument("--exchange", action="append", required=True, metavar="EX",
                   help="QueueEvents.taskFailed or a full exchange name (repeatable)")
    p.add_argument("--pattern", default="#", help="routing-key pattern to bind (default: #)")
    p.add_argument("--count", type=_positive, metavar="N", help="stop after N messages")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="stop after this long")
    p.add_argument("--output", "-o", default="-", metavar="FILE", help="where to write (default: stdout)")
    p.add_argument("--broker-url", help="AMQP URL (default: TCLISTEN_BROKER_URL, else PULSE_USERNAME/PASSWORD)")
    p.add_argument("--progress", type=_positive, default=100, metavar="N", help="a count on stderr every N")

    refs = sub.add_parser("references", parents=[common], help="import or check API/exchanges references",
                          description="Import or check Taskcluster API and exchanges references.")
    refs_sub = refs.add_subparsers(dest="references_command", metavar="ACTION")
    refs_sub.required = True
    p = refs_sub.add_parser("import", parents=[common], help="write references in deployment layout",
                            description="Write the facts of every reference in SRC... to DEST.")
    p.set_defaults(func=cmd_references_import)
    p.add_argument("sources", nargs="+", metavar="SRC", help="directory, reference file, apis.json or rootUrl")
    p.add_argument("--dest", default="references", help="output folder (default: ./references)")
    p = refs_sub.add_parser("check", parents=[common], help="load and validate references, print counts",
                            description="Load and validate the references in SRC; print counts.")
    p.set_defaults(func=cmd_references_check)
    p.add_argument("source", metavar="SRC", help="directory, reference file, apis.json or rootUrl")

    parked = sub.add_parser("parked", parents=[common], help="list or requeue parked messages",
                            description="Messages that failed every attempt wait in the parked queue.")
    parked_sub = parked.add_subparsers(dest="parked_command", metavar="ACTION")
    parked_sub.required = True
    p = parked_sub.add_parser("list", parents=[common], help="print parked messages (they stay parked)",
                              description="Print parked messages; they stay parked.")
    p.set_defaults(func=cmd_parked_list)
    p.add_argument("target", help=target_help)
    p.add_argument("--limit", type=_positive, metavar="N")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p = parked_sub.add_parser("requeue", parents=[common], help="move parked messages back to the queue",
                              description="Move parked messages back into the main queue.")
    p.set_defaults(func=cmd_parked_requeue)
    p.add_argument("target", help=target_help)
    p.add_argument("--limit", type=_positive, metavar="N")

    # the demo parses its own options (and --help): main() hands it whatever is left
    p = sub.add_parser("demo", help="run the offline demonstration (tclisten demo --help)", add_help=False)
    p.set_defaults(func=cmd_demo, demo_args=[])
    return parser


class _StderrHandler(logging.StreamHandler):
    """Logs to whatever ``sys.stderr`` is at the time (redirections and tests swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _configure_logging(args: argparse.Namespace) -> None:
    level = getattr(args, "log_level", None) or ("INFO" if args.command == "run" else "WARNING")
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        root.addHandler(handler)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.setLevel(level)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, TclistenError):
        text = f"{type(exc).__name__}: {text}"
    return text.splitlines()[0] if "\n" in text and not isinstance(exc, TclistenError) else text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tclisten`` command; returns the exit status."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and args.command != "demo":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command == "demo":
        args.demo_args = extra
    _configure_logging(args)
    debug = getattr(args, "debug", False)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ConfigError, TaskclusterTopicExchangeFailure) as exc:
        status = EXIT_USAGE
        error: BaseException = exc
    except (ReferenceFormatError, TclistenError, OSError) as exc:
        status, error = EXIT_FAILURE, exc
    except Exception as exc:  # one clear line for anything else, the traceback on --debug
        status, error = EXIT_FAILURE, exc
    if debug:
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    print(f"tclisten: error: {_one_line(error)}", file=sys.stderr)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
