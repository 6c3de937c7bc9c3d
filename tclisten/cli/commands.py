"""The ``tclisten`` command: the argument parser, the offline commands, errors and exit statuses.

::

    tclisten run listener.yaml --concurrency 4   # or  module:app  or  script.py  (running.py)
    tclisten bindings listener.yaml              # the queue and its bindings, no broker needed
    tclisten bindings --diff listener.yaml       # what the next start adds (+) and removes (-)
    tclisten replay messages.jsonl listener.yaml
    tclisten record --exchange QueueEvents.taskFailed --count 10 --output failed.jsonl
    tclisten publish QueueEvents.taskFailed --fields provisionerId=proj-example
    tclisten parked list listener.yaml           # / requeue --all / drop --task-id ID  (operate.py)
    tclisten delete listener.yaml                # its queues and exchange, after a question
    tclisten migrate listener.yaml --queue-type quorum
    tclisten references import https://tc.example.com --dest references/
    tclisten demo

Exit status: 0 done, 1 the work failed (a handler failed on replay, the broker refused, an
answer was no, ...), 2 the command line or the configuration is wrong, 75 ``run`` stopped
leaving deliveries to the broker, 130 interrupted.  Errors are one line on stderr
(``--debug`` adds the traceback).  Only the command configures logging.

>>> main(["bindings", "--help"])                  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import sys
import traceback
from typing import Any, Callable, Iterator, Sequence, TextIO

from ..exceptions import (
    BindingError, ConfigError, ReferenceFormatError, TaskclusterTopicExchangeFailure, TclistenError,
)
from ..options import LOG_LEVELS, QUEUE_TYPES
from .operate import (
    Progress, cmd_bindings_diff, cmd_delete, cmd_migrate, cmd_parked_drop, cmd_parked_list, cmd_parked_requeue,
    cmd_publish, cmd_record, load_for_inspection,
)
from .overrides import add_run_flags, seconds_or_none
from .running import cmd_run, configure_logging, emit
from .targets import load_target

logger = logging.getLogger(__name__)

__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "build_parser", "catch_all",
           "load_target", "main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


# --------------------------------------------------------------------------- bindings


def catch_all(exchange: str, pattern: str) -> bool:
    """True when ``pattern`` takes every message of ``exchange`` (or every routed one):
    nothing but ``*``/``#`` once the routing key's constant words are set aside.

    >>> catch_all("exchange/taskcluster-queue/v1/task-failed", "primary.*.*.*.*.*.*.*.*.#")
    True
    >>> catch_all("exchange/taskcluster-queue/v1/task-failed", "primary.*.*.*.*.*.*.*.G.#")
    False
    """
    from ..topics import resolve

    words = pattern.split(".")
    if words[0] == "route":
        return all(w in ("*", "#") for w in words[1:])
    try:
        constants = [w.constant for w in getattr(resolve(exchange), "routing_key", ())]
    except BindingError:
        constants = []
    for index, word in enumerate(words):
        if word in ("*", "#"):
            continue
        if index < len(constants) and constants[index] == word:
            continue
        return False
    return True


def cmd_bindings(args: argparse.Namespace) -> int:
    if args.diff:
        return cmd_bindings_diff(args)
    app, _ = load_for_inspection(args)
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


# --------------------------------------------------------------------------- replay


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
    app, _ = load_for_inspection(args, lenient=False)  # the handlers run: what they read must be set
    counts = {"handled": 0, "failed": 0, "unmatched": 0, "invalid": 0}
    progress = Progress("replayed", args.progress, sys.stderr)
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
                for failure in outcome.failed:
                    first = failure.error.splitlines()[0] if failure.error else ""
                    print(f"{args.file}:{number}: {failure.handler} failed: {first}", file=sys.stderr)
            elif outcome.ok:
                counts["handled"] += 1
            elif outcome.unmatched:
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



# --------------------------------------------------------------------------- references


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


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, not {value}")
    return value


def _seconds_or_none(text: str) -> float | None:
    try:
        return seconds_or_none(text)
    except ConfigError as exc:  # argparse says what a type function raised only for this one
        raise argparse.ArgumentTypeError(str(exc)) from None


TARGET_HELP = "listener.yaml, package.module[:attr] or script.py[:attr]"


def _connecting(p: argparse.ArgumentParser, *, broker_help: str | None = None) -> None:
    """The flags of a command that connects: where, and how long to wait (default: one try)."""
    p.add_argument("--broker-url", default=argparse.SUPPRESS, metavar="URL",
                   help=broker_help or "AMQP URL (default: TCLISTEN_BROKER_URL, else the target's own)")
    p.add_argument("--wait-for-broker", type=_seconds_or_none, default=0.0, metavar="SECONDS",
                   help="seconds to keep trying an unreachable broker, 'none' for ever "
                        "(default: 0, one try; a refused login fails at once)")


def _selection(p: argparse.ArgumentParser, *, everything: bool) -> None:
    """The flags that choose parked messages (every criterion given must hold)."""
    if everything:
        p.add_argument("--all", action="store_true", help="every parked message (or give a filter)")
    p.add_argument("--position", type=_positive, metavar="N", help="the N-th parked message (1: the oldest)")
    p.add_argument("--task-id", metavar="ID", help="messages of this taskId")
    p.add_argument("--handler", metavar="NAME", help="messages this handler failed on")
    p.add_argument("--reason", metavar="TEXT", help="messages whose reason contains TEXT")
    p.add_argument("--exchange", metavar="EXCHANGE", help="messages first published to this exchange")
    p.add_argument("--limit", type=_positive, metavar="N", help="at most N messages")


class _Commands:
    """Adds subcommands to one ``add_subparsers`` level, each with the shared flags
    (``--debug``, ``--log-level``) unless told otherwise."""

    def __init__(self, into: Any, common: argparse.ArgumentParser, log: argparse.ArgumentParser) -> None:
        self.into, self.common, self.log = into, common, log

    def add(self, name: str, func: Callable[[argparse.Namespace], int] | None, help_: str,
            parents: Sequence[argparse.ArgumentParser] | None = None, **kw: Any) -> argparse.ArgumentParser:
        kw.setdefault("description", help_)
        chosen = (self.common, self.log) if parents is None else parents
        p = self.into.add_parser(name, parents=list(chosen), help=help_, **kw)
        if func is not None:
            p.set_defaults(func=func)
        return p

    def group(self, name: str, help_: str, *, description: str, dest: str, action_help: str) -> _Commands:
        """A command of commands (``tclisten parked list``): the level below ``name``."""
        p = self.add(name, None, help_, description=description)
        sub = p.add_subparsers(dest=dest, metavar="ACTION", help=action_help)
        sub.required = True
        return _Commands(sub, self.common, self.log)


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="print tracebacks with errors")
    log = argparse.ArgumentParser(add_help=False)
    log.add_argument("--log-level", choices=LOG_LEVELS, type=str.upper, default=argparse.SUPPRESS,
                     help="logging level (default: the file's, else WARNING; INFO for run)")

    parser = argparse.ArgumentParser(
        prog="tclisten", parents=[common, log],
        description="React to Taskcluster's Pulse messages: run, inspect and repair listeners.",
        epilog="Exit status: 0 ok, 1 failure, 2 bad command line or configuration, 75 run stopped with "
               "work left to the broker, 130 interrupted.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", help="what to do (COMMAND --help for more)")
    sub.required = True
    commands = _Commands(sub, common, log)
    _listener_commands(commands)
    _message_commands(commands)
    _parked_commands(commands.group("parked", "list, requeue or drop parked messages",
                                    description="Messages that failed every attempt wait in the parked queue.",
                                    dest="parked_command", action_help="what to do with them"))
    _queue_commands(commands)
    _reference_commands(commands.group("references", "import or check API/exchanges references",
                                       description="Import or check Taskcluster API and exchanges references.",
                                       dest="references_command", action_help="what to do"))
    # the demo parses its own options (and --help): main() hands it whatever is left
    p = sub.add_parser("demo", help="run the offline demonstration (tclisten demo --help)", add_help=False)
    p.set_defaults(func=cmd_demo, demo_args=[])
    return parser


def _listener_commands(commands: _Commands) -> None:
    """run, bindings, replay: a listener and its handlers."""
    p = commands.add("run", cmd_run, "consume and handle messages until SIGINT/SIGTERM", parents=[commands.common])
    p.add_argument("target", help=TARGET_HELP)
    add_run_flags(p)

    p = commands.add("bindings", cmd_bindings, "print the queue and each binding (no broker), or --diff them")
    p.add_argument("target", help=TARGET_HELP)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--diff", action="store_true",
                   help="connect and show what the next start adds (+) and removes (-)")
    _connecting(p)

    p = commands.add("replay", cmd_replay, "run recorded messages (JSON lines) through the handlers, no broker")
    p.add_argument("file", help="JSON lines of {exchange, routing_key, body, headers} (- for stdin), "
                                "or a .json file of one record or a list of them")
    p.add_argument("target", help=TARGET_HELP)
    p.add_argument("--progress", type=_positive, default=1000, metavar="N", help="a count on stderr every N")


def _message_commands(commands: _Commands) -> None:
    """record, publish: messages on any exchange, without a listener."""
    p = commands.add("record", cmd_record, "save live messages as JSON lines (temporary exclusive queue)")
    p.add_argument("--exchange", action="append", required=True, metavar="EX",
                   help="QueueEvents.taskFailed or a full exchange name (repeatable)")
    p.add_argument("--pattern", default="#", help="routing-key pattern to bind (default: #)")
    p.add_argument("--count", type=_positive, metavar="N", help="stop after N messages")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="stop after this long")
    p.add_argument("--output", "-o", default="-", metavar="FILE", help="where to write (default: stdout)")
    p.add_argument("--progress", type=_positive, default=100, metavar="N", help="a count on stderr every N")
    _connecting(p, broker_help="AMQP URL (default: TCLISTEN_BROKER_URL, else PULSE_USERNAME/PASSWORD)")

    p = commands.add("publish", cmd_publish,
                     "send a schema-valid sample message (or your own body) to an exchange")
    p.add_argument("exchange", help="QueueEvents.taskFailed, a full exchange name, or any exchange/... name")
    p.add_argument("--fields", nargs="+", action="extend", metavar="NAME=VALUE",
                   help="what the sample says (taskId=..., provisionerId=..., runId=1, state=...)")
    p.add_argument("--file", metavar="BODY.json", help="publish this JSON body instead of a sample")
    p.add_argument("--routing-key", metavar="KEY", help="the routing key (default: the sample's own)")
    p.add_argument("--route", action="extend", nargs="+", metavar="ROUTE",
                   help="CC routes of the message (index.project.x ...; repeatable)")
    p.add_argument("--count", type=_positive, default=1, metavar="N", help="how many messages (default: 1)")
    p.add_argument("--declare-exchange", action="store_true",
                   help="declare the exchange when it is missing (a local broker only)")
    _connecting(p, broker_help="AMQP URL (default: TCLISTEN_BROKER_URL, else PULSE_USERNAME/PASSWORD)")


def _parked_commands(parked: _Commands) -> None:
    """parked list, requeue, drop."""
    p = parked.add("list", cmd_parked_list, "print parked messages: position, reason, failure, time "
                   "(they stay parked)")
    p.add_argument("target", help=TARGET_HELP)
    p.add_argument("--json", action="store_true", help="one JSON object per line, every failure in full")
    _selection(p, everything=False)
    _connecting(p)
    p = parked.add("requeue", cmd_parked_requeue, "move parked messages back to the queue for another round")
    p.add_argument("target", help=TARGET_HELP)
    _selection(p, everything=True)
    _connecting(p)
    p = parked.add("drop", cmd_parked_drop, "delete parked messages for good (asks first)")
    p.add_argument("target", help=TARGET_HELP)
    _selection(p, everything=True)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _connecting(p)


def _queue_commands(commands: _Commands) -> None:
    """delete, migrate: the listener's queues themselves."""
    p = commands.add("delete", cmd_delete, "delete the listener's queues and exchange (asks first)")
    p.add_argument("target", help=TARGET_HELP)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _connecting(p)

    p = commands.add("migrate", cmd_migrate,
                     "move the listener's queues to another queue type, keeping their messages")
    p.add_argument("target", help=TARGET_HELP)
    p.add_argument("--queue-type", required=True, choices=QUEUE_TYPES, help="the queue type to move to")
    _connecting(p)


def _reference_commands(refs: _Commands) -> None:
    """references import, check."""
    p = refs.add("import", cmd_references_import, "write references in deployment layout")
    p.add_argument("sources", nargs="+", metavar="SRC", help="directory, reference file, apis.json or rootUrl")
    p.add_argument("--dest", default="references", help="output folder (default: ./references)")
    p = refs.add("check", cmd_references_check, "load and validate references, print counts")
    p.add_argument("source", metavar="SRC", help="directory, reference file, apis.json or rootUrl")


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
    if args.command != "run":  # run sets up its own logging (running.py)
        configure_logging(getattr(args, "log_level", None) or "WARNING", "text")
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
    if getattr(args, "log_format_active", None) == "json":
        emit(f"error: {_one_line(error)}", "json", logging.ERROR, exit_status=status)
    else:
        print(f"tclisten: error: {_one_line(error)}", file=sys.stderr)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
