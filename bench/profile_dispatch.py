#!/usr/bin/env python
"""Where tclisten's client CPU goes between the socket and the handler.

    /work/venv/bin/python bench/profile_dispatch.py                    # cProfile, 20,000 messages
    /work/venv/bin/python bench/profile_dispatch.py --callgrind        # instructions per message
    /work/venv/bin/python bench/profile_dispatch.py --callgrind --variants baseline,no-json

**cProfile** (``--cprofile``, the default): a tclisten consumer (the dispatch benchmark's
listener: 3 bindings, prefetch 1000, ``concurrency=1``) drains N pre-published messages in this
process under the profiler; every function's own time (``tottime``) is put into one stage of
the path (socket and frames, py-amqp decoding, kombu's ``Message``, tclisten's consumer, the ack
window, headers, matching, JSON, the handler's ``Message``, the watchdog's bookkeeping, ...) and
the shares are printed (the own time of builtins and stdlib helpers such as ``dict.get`` or
``contextlib`` goes to the stages of their callers).  The profiler inflates Python-heavy parts,
so read the shares as a ranking.

**callgrind** (``--callgrind``): the same consumer under ``valgrind --tool=callgrind``,
counting instructions (deterministic, unaffected by the shared machine's load).  Each variant
runs twice, with ``--small`` and ``--large`` messages, and instructions per message are
``(Ir(large) - Ir(small)) / (large - small)``, so start-up cancels out.  A variant applies, in
the profiled process only, the change a proposal makes (a monkeypatch, nothing is edited), so
the difference to ``baseline`` is the proposal's gain, measured:

- ``baseline``: tclisten as it is;
- ``pyamqp-raw``: the dispatch benchmark's raw py-amqp consumer with batched acks (the target);
- ``kombu-mixin``: the hand-written ConsumerMixin (for scale);
- ``no-json``: ``json.loads`` skipped (a handler that never reads ``message.body`` with a lazy body);
- ``no-invoker``: the per-handler watchdog bookkeeping of ``ListenerConsumer._invoker`` skipped
  (handlers called as ``dispatcher.invoke`` directly);
- ``light-message``: a slotted message of tclisten's own instead of kombu's ``Message`` per
  delivery (kombu's kept for a ``compression`` header);
- ``batch-drain``: one ``drain_events`` dispatches every delivery already in the frame buffer;
- ``all``: the four changes together; ``all-but-json``: the three that keep the body decoded.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, dispatch  # noqa: E402

#: (stage, pattern on "file:function") in order: the first match wins.
STAGES = [
    ("the handler (bench code)", r"bench/(tclisten_adapter|dispatch)\.py"),
    ("socket and frame reads (tclisten.transport, ssl, socket)", r"tclisten/transport\.py|/socket\.py|/ssl\.py|"
                                                                r"method 'recv|'settimeout'|recv_into|'read' of"),
    ("py-amqp: frames to methods, header and property decoding",
     r"amqp/(method_framing|serialization|connection|abstract_channel|basic_message|spec|utils|transport)\.py|"
     r"amqp/channel\.py:\d+\((?!basic_ack|basic_reject)"),
    ("kombu: Message construction and the Consumer callback chain",
     r"kombu/(message|messaging|transport/pyamqp|transport/base|utils|compression|serialization)\.py"),
    ("ack: AckWindow, kombu ack, basic_ack frames", r"tclisten/ackwindow\.py|basic_ack|basic_reject|"
                                                    r"amqp/channel\.py.*basic_ack|_basic_ack|method_framing.*frame_writer|"
                                                    r"write_frame|sendall"),
    ("watchdog bookkeeping (_invoker, Running, Socket lock)", r"tclisten/watchdog\.py|consumer\.py:\d+\(invoke\)|"
                                                              r"lock' objects|acquire|release"),
    ("headers: x-tclisten-* / CC decoding, provenance", r"tclisten/headers\.py|dispatch\.py:\d+\(origin\)"),
    ("matching (trie)", r"tclisten/matching\.py|dispatch\.py:\d+\(match\)"),
    ("json.loads", r"json/|method 'loads'|scan_once|raw_decode"),
    ("handler Message and Outcome", r"tclisten/message\.py|dispatch\.py:\d+\(__init__\)|dispatch\.py:\d+\(ok\)"),
    ("dispatch.run (the rest)", r"tclisten/dispatch\.py"),
    ("consumer loop: _on_message, Delivery, _prepare, _handle, consume, _settle", r"tclisten/consumer\.py"),
    ("tclisten stats and app", r"tclisten/(stats|app)\.py"),
    ("time, threading, queues", r"time|threading|queue|collections|deque"),
]


def _is_helper(filename: str, key: str) -> bool:
    """Builtins and stdlib helpers whose time belongs to whoever called them."""
    if re.search(r"recv|sendall|settimeout", key):  # the socket's own calls are a stage of their own
        return False
    return filename == "~" or "contextlib.py" in filename or "<frozen" in filename


def stage_of(key: str) -> str:
    for stage, pattern in STAGES:
        if re.search(pattern, key):
            return stage
    return "other"


# --------------------------------------------------------------------------------------------
# variants (monkeypatches applied in the profiled process only)


def apply_variant(name: str) -> None:
    parts = {"all": ["batch-drain", "light-message", "no-invoker", "no-json"],
             "all-but-json": ["batch-drain", "light-message", "no-invoker"]}.get(name, [name])
    for part in parts:
        if part in ("baseline", "pyamqp-raw", "kombu-mixin"):
            continue
        PATCHES[part]()


def _no_json() -> None:
    import tclisten.dispatch as d

    decoded = json.loads(common.make_messages(1)[0].body)

    class _FakeJson:
        @staticmethod
        def loads(body: Any) -> Any:
            return decoded

    d.json = _FakeJson  # type: ignore[assignment]


def _no_invoker() -> None:
    from tclisten.consumer import ListenerConsumer

    ListenerConsumer._invoker = lambda self, running: self.dispatcher.invoke  # type: ignore[method-assign]


class LightMessage:
    """What tclisten needs of a delivery (tag, info, headers, body, content type and
    encoding, ack and reject), built straight from py-amqp's message."""

    __slots__ = ("channel", "delivery_tag", "delivery_info", "headers", "body", "content_type",
                 "content_encoding", "properties", "accept")
    errors = ()

    def __init__(self, raw: Any, channel: Any) -> None:
        props = raw.properties
        self.channel = channel
        self.delivery_tag = raw.delivery_tag
        self.delivery_info = raw.delivery_info
        self.properties = props
        self.headers = props.get("application_headers") or {}
        self.content_type = props.get("content_type")
        self.content_encoding = props.get("content_encoding")
        self.body = raw.body

    def ack(self, multiple: bool = False) -> None:
        self.channel.basic_ack(self.delivery_tag, multiple=multiple)

    def reject(self, requeue: bool = False) -> None:
        self.channel.basic_reject(self.delivery_tag, requeue=requeue)


def _light_message() -> None:
    """kombu's Message (base.Message.__init__: errors list, state, compression and postencode
    checks, 12 attributes) replaced by :class:`LightMessage` (kept: kombu's Message whenever a
    ``compression`` header is present)."""
    import kombu.transport.pyamqp as kp

    kombu_message = kp.Channel.message_to_python

    def message_to_python(self: Any, raw: Any) -> Any:
        headers = raw.properties.get("application_headers")
        if headers and "compression" in headers:
            return kombu_message(self, raw)
        return LightMessage(raw, self)

    kp.Channel.message_to_python = message_to_python  # type: ignore[assignment]


def _batch_drain() -> None:
    """Built into ``tclisten.transport`` since (``_DrainBuffered``): nothing to patch; kept as a
    variant name so that older result files stay comparable."""


PATCHES = {"no-json": _no_json, "no-invoker": _no_invoker, "light-message": _light_message,
           "batch-drain": _batch_drain}
VARIANTS = ("baseline", "pyamqp-raw", "kombu-mixin", "batch-drain", "light-message", "no-invoker", "no-json", "all",
            "all-but-json")


# --------------------------------------------------------------------------------------------
# one consume, in this process


def consume_here(variant: str, queue: str, count: int) -> dict[str, Any]:
    import logging

    logging.getLogger("tclisten").setLevel(logging.WARNING)
    apply_variant(variant)
    if variant == "pyamqp-raw":
        return dispatch.consume_pyamqp_batched(queue, count)
    if variant == "kombu-mixin":
        return dispatch.consume_kombu_mixin(queue, count)
    return dispatch.consume_tclisten(queue, count)


def child_main(args: argparse.Namespace) -> int:
    """``--child``: consume ``--count`` messages from ``--queue`` (under valgrind)."""
    result = consume_here(args.variant, args.queue, args.count)
    print(json.dumps({"msg_per_s": result["msg_per_s"]}))
    return 0


def prepared_queue(variant: str, messages: list[common.BenchMessage]) -> tuple[str, str]:
    kind = "tclisten" if variant not in ("pyamqp-raw", "kombu-mixin") else variant
    queues = dispatch.prepare((kind,), {})
    common.publish(messages, [queues[kind]])
    return kind, queues[kind]


def run_cprofile(count: int, top: int) -> None:
    messages = common.make_messages(count)
    kind, queue = prepared_queue("baseline", messages)
    try:
        profiler = cProfile.Profile()
        started = time.process_time()
        profiler.enable()
        result = consume_here("baseline", queue, count)
        profiler.disable()
        cpu = time.process_time() - started
    finally:
        dispatch.cleanup({kind: queue})
    stats = pstats.Stats(profiler)
    by_stage: dict[str, float] = defaultdict(float)
    rows = []
    total = 0.0
    table = stats.stats  # type: ignore[attr-defined]

    def stage_by_caller(func_key: tuple, depth: int = 0) -> dict[str, float]:
        """A helper's own time (builtins, contextlib) split over its callers' stages."""
        filename, line, func = func_key
        key = f"{filename}:{line}({func})"
        own = stage_of(key)
        if not _is_helper(filename, key) or depth > 3:
            return {own: 1.0}
        callers = table[func_key][4]
        weights: dict[str, float] = defaultdict(float)
        spent = sum(c[2] for c in callers.values()) or 1.0
        for caller, (_cc, _nc, tt, _ct) in callers.items():
            for stage, share in stage_by_caller(caller, depth + 1).items():
                weights[stage] += share * tt / spent
        return weights or {own: 1.0}

    for func_key, (cc, nc, tt, ct, callers) in table.items():
        filename, line, func = func_key
        key = f"{filename}:{line}({func})"
        for stage, share in stage_by_caller(func_key).items():
            by_stage[stage] += tt * share
        total += tt
        rows.append((tt, nc, key))
    print(f"cProfile: {count:,} messages, {result['msg_per_s']:,.0f} msg/s under the profiler, "
          f"{cpu / count * 1e6:.1f} µs CPU per message (profiled)\n")
    print("| share of profiled time (own time) | stage |\n|---:|---|")
    for stage, seconds in sorted(by_stage.items(), key=lambda kv: -kv[1]):
        print(f"| {seconds / total * 100:4.1f} % | {stage} |")
    print(f"\nTop {top} functions by own time:\n")
    print("| own time | calls | per message | function |\n|---:|---:|---:|---|")
    for tt, nc, key in sorted(rows, reverse=True)[:top]:
        short = re.sub(r".*site-packages/|.*/work/main/", "", key)
        print(f"| {tt / total * 100:4.1f} % | {nc:,} | {nc / count:.2f} | `{short}` |")


def callgrind_instructions(variant: str, queue: str, count: int, out_dir: Path) -> int:
    out = out_dir / f"callgrind.{variant}.{count}.out"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
           sys.executable, str(Path(__file__).resolve()), "--child", "--variant", variant, "--queue", queue,
           "--count", str(count)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, cwd=common.ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"callgrind {variant} {count}: {proc.stderr[-3000:]}")
    match = re.search(r"Collected : (\d+)", proc.stderr) or re.search(r"refs:\s+([\d,]+)", proc.stderr)
    if not match:
        raise RuntimeError(f"no instruction count in valgrind's output: {proc.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


def run_callgrind(variants: list[str], small: int, large: int) -> None:
    out_dir = Path(tempfile.mkdtemp(prefix="tclisten-callgrind-"))
    results: dict[str, float] = {}
    for variant in variants:
        counts = {}
        for count in (small, large):
            messages = common.make_messages(count)
            kind, queue = prepared_queue(variant, messages)
            try:
                counts[count] = callgrind_instructions(variant, queue, count, out_dir)
            finally:
                dispatch.cleanup({kind: queue})
        results[variant] = (counts[large] - counts[small]) / (large - small)
        print(f"{variant}: {results[variant]:,.0f} instructions per message "
              f"({counts[small]:,} for {small}, {counts[large]:,} for {large})", file=sys.stderr, flush=True)
    base = results.get("baseline")
    print(f"\ncallgrind: instructions per message, (Ir({large:,}) - Ir({small:,})) / {large - small:,}\n")
    print("| variant | instructions / message | vs baseline |\n|---|---:|---:|")
    for variant, ir in results.items():
        delta = f"{(ir - base) / base * 100:+.1f} %" if base else "–"
        print(f"| {variant} | {ir:,.0f} | {delta} |")
    print(f"\n(callgrind output files in {out_dir})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--count", type=int, default=20_000, help="messages for cProfile")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--small", type=int, default=2_000)
    parser.add_argument("--large", type=int, default=8_000)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="baseline", help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args)
    try:
        if args.callgrind:
            run_callgrind([v.strip() for v in args.variants.split(",") if v.strip()], args.small, args.large)
        else:
            run_cprofile(args.count, args.top)
    finally:
        common.delete_exchange()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
