#!/usr/bin/env python
"""Run tclisten's benchmarks against the local RabbitMQ and write ``bench/RESULTS.md``.

    /work/venv/bin/python bench/run.py            # full run, ~25 minutes, writes bench/RESULTS.md
    /work/venv/bin/python bench/run.py --quick    # tiny sizes, < 60 s, writes bench/out/RESULTS-quick.md
    /work/venv/bin/python bench/run.py --only dispatch,tls --rounds 3

Peers (FastStream, nameko) are optional: ``pip install 'tclisten[bench]'``; a missing one gets
a row saying "not installed".  The TLS benchmark starts a private RabbitMQ node of its own
(tests/support/nodes.py) with a certificate from a CA it makes (openssl); without RabbitMQ or
openssl its section says why it did not run.

Candidates of a benchmark run in interleaved rounds (the order rotates every round), each in a
fresh process; tables give medians over rounds and the median of the per-round ratios to the
baseline (the same round, so hour-to-hour drift of a shared machine cancels).  Benchmarks,
not tests: a missed target is reported, not failed; the exit status is 1 only when a
benchmark could not run.  Whatever follows the analysis marker in an existing output file
is kept, so the hand-written analysis survives a re-run.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (common, dispatch, failure, io_bound, memory, overhead, peers, processes, rest,  # noqa: E402
                   startup, tlsnode)

logger = logging.getLogger("bench")

ANALYSIS_MARKER = "<!-- analysis: written by hand, kept by bench/run.py -->"
BENCHMARKS = ("dispatch", "tls", "memory", "failure", "workers", "io_bound", "rest", "overhead", "startup")


@dataclass(frozen=True)
class Sizes:
    dispatch_messages: int
    dispatch_rounds: int
    tls_messages: int
    tls_rounds: int
    backlog_messages: int
    backlog_rounds: int
    failure_messages: int
    failure_rounds: int
    workers_messages: int
    workers_rounds: int
    io_messages: int
    io_rounds: int
    rest_calls: int
    rest_rounds: int
    overhead_messages: int
    overhead_rounds: int
    startup_rounds: int


FULL = Sizes(dispatch_messages=20_000, dispatch_rounds=4, tls_messages=20_000, tls_rounds=3,
             backlog_messages=100_000, backlog_rounds=2, failure_messages=10_000, failure_rounds=3,
             workers_messages=8_000, workers_rounds=3, io_messages=4_000, io_rounds=3, rest_calls=600,
             rest_rounds=5, overhead_messages=20_000, overhead_rounds=5, startup_rounds=15)
QUICK = Sizes(dispatch_messages=300, dispatch_rounds=1, tls_messages=300, tls_rounds=1, backlog_messages=2_500,
              backlog_rounds=1, failure_messages=300, failure_rounds=1, workers_messages=200, workers_rounds=1,
              io_messages=100, io_rounds=1, rest_calls=20, rest_rounds=1, overhead_messages=1_000,
              overhead_rounds=1, startup_rounds=1)
#: Candidates left out of quick runs (they prove nothing the others do not, and cost seconds).
QUICK_SKIP = {"tls": ("faststream-tuned", "nameko", "faststream", "kombu-mixin", "tclisten-proposals"),
              "memory": ("faststream", "nameko")}


@dataclass
class Section:
    """One benchmark's outcome: a markdown table, notes, and the raw per-round figures."""

    key: str
    title: str
    what: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str]
    raw: Any
    error: str | None = None


# --------------------------------------------------------------------------------------------
# helpers


def rotate(items: tuple[str, ...], round_no: int) -> list[str]:
    k = round_no % len(items)
    return list(items[k:] + items[:k])


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("**pass**" if ok else "**miss**")


def column(per_round: list[dict[str, dict]], candidate: str, field: str) -> list[float]:
    return [r[candidate][field] for r in per_round if candidate in r and field in r[candidate]]


def ratio_column(per_round: list[dict[str, dict]], candidate: str, baseline: str, field: str) -> list[float]:
    return common.ratios(column(per_round, candidate, field), column(per_round, baseline, field))


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# the benchmarks


NOT_INSTALLED = "not installed (pip install 'tclisten[bench]')"


def split_available(candidates: tuple[str, ...], skip: tuple[str, ...] = ()) -> tuple[tuple[str, ...], dict[str, str]]:
    """The candidates that can run here, and why the others cannot."""
    missing = {c: NOT_INSTALLED.replace("tclisten[bench]", f"tclisten[bench]: {peers.missing(c)}")
               for c in candidates if peers.missing(c)}
    missing.update({c: "skipped in quick mode" for c in skip if c in candidates and c not in missing})
    return tuple(c for c in candidates if c not in missing), missing


def dispatch_rows(per_round: list[dict[str, dict]], candidates: tuple[str, ...], missing: dict[str, str],
                  targets: dict[str, float]) -> list[list[str]]:
    """One row per candidate: its rate, tclisten's rate over it (per-round median), CPU."""
    base = dispatch.BASELINE
    rows = []
    for candidate in candidates:
        if candidate in missing:
            rows.append([candidate, missing[candidate], "–", "–", "–", "–", "–",
                         f"≥ {targets[candidate]:.1f}x" if candidate in targets else "", "–"])
            continue
        rate = common.median(column(per_round, candidate, "msg_per_s"))
        ratio = common.median(ratio_column(per_round, base, candidate, "msg_per_s"))
        cpu = common.median(column(per_round, candidate, "cpu_us_per_msg"))
        broker = common.median(column(per_round, candidate, "broker_cpu_us_per_msg"))
        rss = max(column(per_round, candidate, "max_rss_mib") or [float("nan")])
        left = max(column(per_round, candidate, "left_in_queue") or [0])
        target, ok = "", None
        if candidate in targets:
            target, ok = f"tclisten ≥ {targets[candidate]:.1f}x", ratio >= targets[candidate]
        rows.append([candidate + (" (reference)" if candidate == base else ""), fmt(rate),
                     "1.00x" if candidate == base else f"{ratio:.2f}x", fmt(cpu), fmt(broker), fmt(rss, 1),
                     str(int(left)), target, verdict(ok)])
    return rows


def proposal_note(per_round: list[dict[str, dict]], targets: dict[str, float]) -> list[str]:
    """What the proposals' row gives against the targets' peers (per-round ratios, medians)."""
    proposal = "tclisten-proposals"
    if not any(proposal in r for r in per_round):
        return []
    parts = []
    for peer, target in targets.items():
        ratio = common.median(ratio_column(per_round, proposal, peer, "msg_per_s"))
        if ratio == ratio:  # not nan
            parts.append(f"{ratio:.2f}x {peer} (target {target:.1f}x)")
    gain = common.median(ratio_column(per_round, proposal, dispatch.BASELINE, "msg_per_s"))
    return [f"`tclisten-proposals` (tclisten with `batch-drain` and `light-message` applied, see the analysis): "
            f"{gain:.2f}x tclisten as it is; " + ", ".join(parts) + "."]


DISPATCH_HEADER = ["candidate", "msg/s (median)", "tclisten ÷ candidate (msg/s, same round)", "client CPU µs/msg",
                   "broker CPU µs/msg", "max RSS MiB", "left unacked", "target", "verdict"]


def run_rounds(name: str, candidates: tuple[str, ...], messages: list[common.BenchMessage], rounds: int,
               **kwargs: Any) -> list[dict[str, dict]]:
    per_round: list[dict[str, dict]] = []
    queues: dict[str, str] = {}
    try:
        dispatch.prepare(candidates, queues)
        for r in range(rounds):
            results = dispatch.run_round_robust(rotate(candidates, r), queues, messages, **kwargs)
            progress(f"{name} round {r + 1}: " + ", ".join(
                f"{c} {v['msg_per_s']:,.0f}" for c, v in results.items()) + f" msg/s; load {common.load()}")
            per_round.append(results)
    finally:
        dispatch.cleanup(queues)
    return per_round


def bench_dispatch(sizes: Sizes) -> Section:
    load0 = common.load()
    available, missing = split_available(dispatch.CANDIDATES)
    messages = common.make_messages(sizes.dispatch_messages)
    per_round = run_rounds("dispatch", available, messages, sizes.dispatch_rounds)
    return Section(
        "dispatch", "1. Dispatch throughput",
        f"{sizes.dispatch_messages:,} pre-published persistent task-completed messages (~677-byte JSON, "
        "10-word primary key, 1-2 CC routes) on a durable queue with 3 bindings, trivial handler (reads the "
        f"taskId); prefetch {dispatch.PREFETCH} for tclisten, raw py-amqp and the ConsumerMixin, the peers' "
        f"own defaults otherwise; {sizes.dispatch_rounds} interleaved rounds, each candidate in a fresh process, "
        "the machine's broker on loopback.  Timed from the first message reaching the handler to the consume "
        "loop returning after the last ack.  The ratio column is tclisten's msg/s over the candidate's, "
        "taken within each round, median over rounds.",
        DISPATCH_HEADER, dispatch_rows(per_round, dispatch.CANDIDATES, missing, dispatch.TARGETS),
        ["Broker CPU is RabbitMQ's (beam.smp) CPU during the consume phase divided by the messages; "
         "the broker is shared with other work on this machine, so read it as indicative.",
         "`left unacked` must be 0: a candidate that stops without acking its last messages would "
         "show it here.",
         "faststream: `RabbitBroker` defaults (no basic.qos, so no prefetch limit; FastStream's access log at "
         "INFO, to /dev/null); faststream-tuned: `Channel(prefetch_count=1000)`, `logger=None` (no target); "
         "nameko: `@consume`, `max_workers` 10 = its prefetch.",
         *proposal_note(per_round, dispatch.TARGETS),
         f"Load average (1/5/15 min): {load0} at the start, {common.load()} at the end."],
        per_round)


def bench_tls(sizes: Sizes, quick: bool = False) -> Section:
    load0 = common.load()
    why = tlsnode.unavailable()
    title = "2. Dispatch over TLS"
    if why:  # a row that says so, not an error: the rest of the report stands
        return Section("tls", title, "A private RabbitMQ node with a TLS listener could not start here.",
                       ["candidate", "why"], [["every candidate", f"cannot run here: {why}"]], [], None)
    available, missing = split_available(dispatch.CANDIDATES, QUICK_SKIP["tls"] if quick else ())
    messages = common.make_messages(sizes.tls_messages)
    with tlsnode.TlsNode() as node:
        saved = common.use_broker(node.url, node.tls_url, node.ca)
        os.environ[common.BROKER_PID_VARIABLE] = str(node.beam_pid or "")
        try:
            per_round = run_rounds("tls", available, messages, sizes.tls_rounds)
            try:
                common.delete_exchange()
            except Exception:  # the node goes away with everything in it
                pass
        finally:
            os.environ.pop(common.BROKER_PID_VARIABLE, None)
            common.restore_broker(saved)
    return Section(
        "tls", title,
        f"The dispatch benchmark ({sizes.tls_messages:,} messages, {sizes.tls_rounds} interleaved rounds) against "
        "a private RabbitMQ node of the bench's own with a TLS listener (`listeners.ssl.default`), its "
        "certificate for `localhost`/`127.0.0.1` signed by a CA the bench makes with openssl.  Every client "
        "verifies the certificate and the host name: tclisten is given `amqps://guest:guest@localhost:PORT//` "
        "and the CA through `SSL_CERT_FILE` (tclisten passes py-amqp `cert_reqs=CERT_REQUIRED` and "
        "`server_hostname`), the others the CA file.  Messages are published over the node's plain listener.",
        DISPATCH_HEADER, dispatch_rows(per_round, dispatch.CANDIDATES, missing, dispatch.TARGETS),
        ["Broker CPU here is the private node's beam.smp alone (nothing else uses that node).",
         *proposal_note(per_round, dispatch.TARGETS),
         f"Load average (1/5/15 min): {load0} at the start, {common.load()} at the end."],
        per_round)


def bench_io_bound(sizes: Sizes) -> Section:
    candidates = io_bound.CANDIDATES
    messages = common.make_messages(sizes.io_messages)
    per_round: list[dict[str, dict]] = []
    queues: dict[str, str] = {}
    try:
        dispatch.prepare(candidates, queues)
        for r in range(sizes.io_rounds):
            results = dispatch.run_round_robust(rotate(candidates, r), queues, messages,
                                      prefetch=io_bound.PREFETCH, consumer_for=io_bound.consumer_for)
            progress(f"io_bound round {r + 1}: " + ", ".join(
                f"{c} {v['msg_per_s']:,.0f}" for c, v in results.items()) + " msg/s")
            per_round.append(results)
    finally:
        dispatch.cleanup(queues)
    rows = []
    for candidate in candidates:
        rate = common.median(column(per_round, candidate, "msg_per_s"))
        ratio = common.median(ratio_column(per_round, candidate, io_bound.BASELINE, "msg_per_s"))
        cpu = common.median(column(per_round, candidate, "cpu_us_per_msg"))
        target, ok = "", None
        if candidate == "tclisten":
            target, ok = (f"≥ 95 % of the ceiling ({io_bound.TARGET_MSG_PER_S:,.0f} msg/s)",
                          rate >= io_bound.TARGET_MSG_PER_S)
        rows.append([candidate + (" (baseline)" if candidate == io_bound.BASELINE else ""), fmt(rate),
                     f"{ratio:.2f}x", fmt(cpu), target, verdict(ok)])
    ceiling = io_bound.CONCURRENCY / io_bound.SLEEP
    return Section(
        "io_bound", "6. I/O-bound handlers",
        f"{sizes.io_messages:,} messages, each handler sleeps {io_bound.SLEEP * 1e3:.0f} ms, "
        f"concurrency {io_bound.CONCURRENCY}, prefetch {io_bound.PREFETCH}; {sizes.io_rounds} interleaved rounds.  "
        f"Ceiling: {io_bound.CONCURRENCY} / {io_bound.SLEEP * 1e3:.0f} ms = {ceiling:,.0f} msg/s.",
        ["candidate", "msg/s (median)", "ratio vs kombu-threadpool", "client CPU µs/msg", "target", "verdict"],
        rows, [f"Load average (1/5/15 min) at the end: {common.load()}."], per_round)


def bench_rest(sizes: Sizes) -> Section:
    candidates = rest.CANDIDATES
    per_round: list[dict[str, dict]] = []
    with rest.Server() as server:
        for r in range(sizes.rest_rounds):
            results = {}
            for candidate in rotate(candidates, r):
                results[candidate] = common.retrying(rest.run_one, candidate, server.root_url, sizes.rest_calls)
                progress(f"rest round {r + 1}: {candidate} {results[candidate]['calls_per_s']:,.0f} calls/s")
            per_round.append(results)
        kind = server.kind
    rows = []
    for candidate in candidates:
        rate = common.median(column(per_round, candidate, "calls_per_s"))
        ratio = common.median(ratio_column(per_round, candidate, rest.BASELINE, "calls_per_s"))
        cpu = common.median(column(per_round, candidate, "cpu_ms_per_call"))
        cpu_ratio = common.median(ratio_column(per_round, candidate, rest.BASELINE, "cpu_ms_per_call"))
        target, ok = "", None
        if candidate == "tclisten":
            target, ok = "throughput ≥ 1.9x, CPU/call ≤ 0.5x", ratio >= 1.9 and cpu_ratio <= 0.5
        rows.append([candidate + (" (baseline)" if candidate == rest.BASELINE else ""), fmt(rate),
                     f"{ratio:.2f}x", f"{cpu:.2f}", f"{cpu_ratio:.2f}x", target, verdict(ok)])
    return Section(
        "rest", "7. REST calls",
        f"{sizes.rest_calls:,} sequential Hawk-signed `queue.task(taskId)` calls per client and round "
        f"(after 10 warm-up calls), {sizes.rest_rounds} interleaved rounds, each client in a fresh process.  "
        f"Server: {kind}, in a separate process (its CPU is not counted).  Client CPU is "
        "`time.process_time()` of the client process.",
        ["client", "calls/s (median)", "ratio vs taskcluster", "client CPU ms/call", "CPU ratio", "target",
         "verdict"],
        rows, [f"Load average (1/5/15 min) at the end: {common.load()}."], per_round)


def bench_overhead(sizes: Sizes) -> Section:
    per_round = [common.in_subprocess(overhead.measure, sizes.overhead_messages, timeout=300)
                 for _ in range(sizes.overhead_rounds)]
    progress(f"overhead: {per_round[-1]}")
    names = list(per_round[0])
    rows = []
    for name in names:
        values = [r[name] for r in per_round]
        target, ok = "", None
        if name == "tclisten dispatch, body decoded":
            target, ok = "< 10 µs", common.median(values) < 10
        rows.append([name, f"{common.median(values):.1f}", f"{min(values):.1f}", target, verdict(ok)])
    return Section(
        "overhead", "8. Per-message overhead, 100 bindings, no broker",
        f"`Listener.dispatch` of {sizes.overhead_messages:,} messages in a hot loop, in a fresh process per "
        f"round ({sizes.overhead_rounds} rounds), 100 bindings on one queue (40 taskGroupId, 30 CC routes, "
        "20 provisionerId+workerType, 10 schedulerId), each message matching one binding and carrying "
        "1-2 CC keys.  CPU time of the process per message.",
        ["path", "µs/msg (median)", "µs/msg (best round)", "target", "verdict"],
        rows, [], per_round)


def bench_memory(sizes: Sizes, quick: bool = False) -> Section:
    load0 = common.load()
    available, missing = split_available(memory.CANDIDATES, QUICK_SKIP["memory"] if quick else ())
    messages = common.make_messages(sizes.backlog_messages)
    per_round = run_rounds("backlog", available, messages, sizes.backlog_rounds, prefetch=memory.PREFETCH,
                           timeout=1800, consumer_for=memory.consumer_for)
    base = memory.BASELINE
    rows = []
    for candidate in memory.CANDIDATES:
        if candidate in missing:
            rows.append([candidate, missing[candidate]] + ["–"] * 6 + ["", "–"])
            continue
        seconds = common.median(column(per_round, candidate, "seconds"))
        rate = common.median(column(per_round, candidate, "msg_per_s"))
        ratio = common.median(ratio_column(per_round, candidate, base, "seconds"))
        rss = max(column(per_round, candidate, "max_rss_mib") or [float("nan")])
        growth = max(column(per_round, candidate, "growth_mib") or [float("nan")])
        samples = per_round[-1][candidate]["samples_mib"]
        target, ok = "", None
        if candidate == base:
            target, ok = f"RSS flat: growth < {memory.TARGET_GROWTH_MIB:g} MiB", growth < memory.TARGET_GROWTH_MIB
        rows.append([candidate + (" (reference)" if candidate == base else ""), f"{seconds:.1f}", fmt(rate),
                     "1.00x" if candidate == base else f"{ratio:.2f}x", fmt(rss, 1), f"{growth:.2f}",
                     " ".join(f"{x:.0f}" for x in samples), str(int(max(column(per_round, candidate, "left_in_queue")
                                                                      or [0]))), target, verdict(ok)])
    return Section(
        "memory", "3. Backlog drain and Memory",
        f"{sizes.backlog_messages:,} messages published while nothing consumed (a listener's downtime), then "
        f"drained by one fresh consumer process per candidate ({sizes.backlog_rounds} round(s); prefetch "
        f"{memory.PREFETCH} where the candidate takes one, the peers' defaults otherwise).  Drain time: first "
        "message handled to the last one acked.  RSS sampled by the handler after every tenth; growth = RSS at "
        f"the end − RSS at the first sample past a tenth of the run and {2 * memory.PREFETCH:,} messages; max "
        "RSS is the process's peak (`ru_maxrss`).",
        ["candidate", "drain time s", "msg/s", "drain time ÷ tclisten's", "max RSS MiB", "RSS growth MiB",
         "RSS samples MiB", "left unacked", "target", "verdict"],
        rows, [f"Load average (1/5/15 min): {load0} at the start, {common.load()} at the end."], per_round)


def bench_failure(sizes: Sizes) -> Section:
    load0 = common.load()
    candidates = failure.CANDIDATES
    messages = common.make_messages(sizes.failure_messages)
    per_round: list[dict[str, dict]] = []
    queues: dict[str, str] = {}
    try:
        for candidate in candidates:
            queues[candidate] = name = dispatch.queue_name_for(candidate)
            common.retrying(failure.declare, name)
        for r in range(sizes.failure_rounds):
            results = dispatch.run_round_robust(rotate(candidates, r), queues, messages, prefetch=failure.PREFETCH,
                                                consumer_for=failure.consumer_for)
            for candidate in candidates:
                results[candidate]["copies"] = failure.retry_depth(queues[candidate])
            for candidate in candidates:  # the next round starts with empty delay queues
                common.retrying(failure.delete, queues[candidate])
                common.retrying(failure.declare, queues[candidate])
            progress(f"failure round {r + 1}: " + ", ".join(
                f"{c} {v['msg_per_s']:,.0f}" for c, v in results.items()) + f" msg/s; load {common.load()}")
            per_round.append(results)
    finally:
        for name in queues.values():
            try:
                common.retrying(failure.delete, name)
            except Exception:
                logger.exception("could not delete %s", name)
    rows = []
    for candidate in candidates:
        rate = common.median(column(per_round, candidate, "msg_per_s"))
        ratio = common.median(ratio_column(per_round, candidate, failure.BASELINE, "msg_per_s"))
        cpu = common.median(column(per_round, candidate, "cpu_us_per_msg"))
        broker = common.median(column(per_round, candidate, "broker_cpu_us_per_msg"))
        copies = min(column(per_round, candidate, "copies") or [0])
        left = max(column(per_round, candidate, "left_in_queue") or [0])
        target, ok = "", None
        if candidate == "tclisten-failing":
            target, ok = f"≥ {failure.TARGET:.1f}x the success path", ratio >= failure.TARGET
        rows.append([candidate + (" (baseline)" if candidate == failure.BASELINE else ""), fmt(rate),
                     f"{ratio:.2f}x", fmt(cpu), fmt(broker), str(int(copies)), str(int(left)), target, verdict(ok)])
    return Section(
        "failure", "4. The failure path",
        f"{sizes.failure_messages:,} pre-published messages; `tclisten-failing`'s handlers raise, so each message "
        "costs a retry copy published with publisher confirms to the listener's delay queue, then the ack of "
        "its original; `tclisten-ok` is the same listener whose handlers return.  Same settings (prefetch "
        f"{failure.PREFETCH}, concurrency 1, retry {failure.RETRY}), {sizes.failure_rounds} interleaved rounds, "
        "fresh processes.  Timed from the first handler call to `run()` returning (the last copy confirmed, "
        "the last original acked).",
        ["candidate", "msg/s (median)", "ratio vs success path", "client CPU µs/msg", "broker CPU µs/msg",
         "copies in the delay queue", "left in the main queue", "target", "verdict"],
        rows, [*failure_floor_note(per_round),
               f"Load average (1/5/15 min): {load0} at the start, {common.load()} at the end."], per_round)


def failure_floor_note(per_round: list[dict[str, dict]]) -> list[str]:
    """tclisten's failing path against the same work done on raw py-amqp (same rounds)."""
    if not any("pyamqp-copies" in r for r in per_round):
        return []
    ours = common.median(ratio_column(per_round, "tclisten-failing", "pyamqp-copies", "msg_per_s"))
    floor = common.median(ratio_column(per_round, "pyamqp-copies", failure.BASELINE, "msg_per_s"))
    return [f"`pyamqp-copies` (raw py-amqp: copy, confirm, ack; no handler framework) reaches {floor:.2f}x "
            f"the success path: the ceiling of a failure path that keeps a persistent confirmed copy on this "
            f"broker; `tclisten-failing` runs at {ours:.2f}x `pyamqp-copies`."]


def bench_workers(sizes: Sizes) -> Section:
    load0 = common.load()
    candidates = processes.CANDIDATES
    messages = common.make_messages(sizes.workers_messages)
    setup = processes.Setup()
    per_round: list[dict[str, dict]] = []
    try:
        common.retrying(setup.declare)
        for r in range(sizes.workers_rounds):
            results = {}
            for candidate in rotate(candidates, r):
                count = int(candidate.rsplit("-", 1)[1])
                results[candidate] = common.retrying(processes.run_one, setup, count, messages)
            progress(f"workers round {r + 1}: " + ", ".join(
                f"{c} {v['msg_per_s']:,.0f} msg/s (machine busy {v['machine_busy'] * 100:.0f} %)"
                for c, v in results.items()) + f"; load {common.load()}")
            per_round.append(results)
    finally:
        setup.delete()
    rows = []
    for candidate in candidates:
        rate = common.median(column(per_round, candidate, "msg_per_s"))
        ratio = common.median(ratio_column(per_round, candidate, processes.BASELINE, "msg_per_s"))
        busy = common.median(column(per_round, candidate, "machine_busy"))
        background = common.median(column(per_round, candidate, "background_busy"))
        per_round_ratios = " ".join(f"{x:.2f}" for x in ratio_column(per_round, candidate, processes.BASELINE,
                                                                     "msg_per_s"))
        broker = common.median(column(per_round, candidate, "broker_cores"))
        split = " / ".join(str(n) for n in per_round[-1][candidate]["per_process"])
        statuses = ",".join(str(r[candidate]["exit_status"]) for r in per_round)
        target, ok = "", None
        if candidate != processes.BASELINE:
            target, ok = f"≥ {processes.TARGET:.1f}x", ratio >= processes.TARGET
        rows.append([candidate + (" (baseline)" if candidate == processes.BASELINE else ""), fmt(rate),
                     f"{ratio:.2f}x", per_round_ratios, f"{background * 100:.0f} %", f"{busy * 100:.0f} %",
                     f"{broker:.2f}", split, statuses, target, verdict(ok)])
    return Section(
        "workers", "5. Worker processes, CPU-bound handler",
        f"`python -m tclisten run target.py --workers N` on {sizes.workers_messages:,} pre-published messages whose "
        f"handler burns {processes.CPU_SECONDS * 1e3:g} ms of CPU (a busy loop), prefetch {processes.PREFETCH} per "
        f"worker; {sizes.workers_rounds} interleaved rounds.  Each worker holds its first message until every "
        "worker has one, then the span to the last message handled is timed (start-up excluded).  Machine busy: "
        "the share of both cores in use (/proc/stat), during the second before the command starts (what "
        "other people's work on this shared machine takes) and during the span (everything included); broker "
        "cores: the broker's CPU seconds per second of the span.",
        ["candidate", "msg/s (median)", "ratio vs 1 worker", "ratio per round", "machine busy before (others)",
         "machine busy during", "broker cores", "messages per worker (last round)", "exit statuses", "target",
         "verdict"],
        rows, [f"Load average (1/5/15 min): {load0} at the start, {common.load()} at the end."], per_round)


def bench_startup(sizes: Sizes) -> Section:
    names = list(startup.SNIPPETS)
    per_round = []
    for r in range(sizes.startup_rounds):
        per_round.append(startup.run_round(rotate(tuple(names), r)))
    progress(f"startup: last round {per_round[-1]}")
    bare = common.median(r["python (no import)"] for r in per_round)
    rows = []
    for name in names:
        wall = common.median(r[name] for r in per_round)
        ratio = common.median(r[name] / r[startup.BASELINE] for r in per_round)
        target, ok = "", None
        if name == startup.CANDIDATE:
            target, ok = "no slower (≤ 1.0x)", ratio <= 1.0
        rows.append([name, f"{wall:.0f}", f"{wall - bare:.0f}", f"{ratio:.2f}x", target, verdict(ok)])
    return Section(
        "startup", "9. Start-up",
        f"Each snippet in a fresh `python -c` subprocess, {sizes.startup_rounds} interleaved rounds, wall "
        "time from spawn to exit measured by the parent; net = minus the bare interpreter's median.",
        ["snippet", "ms (median)", "net ms", "ratio vs import taskcluster", "target", "verdict"],
        rows, [], per_round)


RUNNERS: dict[str, Callable[..., Section]] = {
    "dispatch": bench_dispatch, "tls": bench_tls, "memory": bench_memory, "failure": bench_failure,
    "workers": bench_workers, "io_bound": bench_io_bound, "rest": bench_rest, "overhead": bench_overhead,
    "startup": bench_startup,
}
TAKES_QUICK = {"tls", "memory"}


# --------------------------------------------------------------------------------------------
# the report


def render(sections: list[Section], info: dict[str, str], mode: str, seconds: float, previous: str) -> str:
    lines = ["# tclisten benchmark results", "",
             f"Generated by `bench/run.py{' --quick' if mode == 'quick' else ''}` ({mode} mode) on "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, in {seconds:.0f} s.  Medians over "
             "interleaved rounds; ratios are medians of per-round ratios (same round, same machine "
             "state).  Benchmarks, not tests: nothing here fails a build.", "",
             "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines.append("")
    for s in sections:
        lines += [f"## {s.title}", "", s.what, ""]
        if s.error:
            lines += ["**Could not run:**", "", "```", s.error.strip()[-3000:], "```", ""]
            continue
        lines.append("| " + " | ".join(s.header) + " |")
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(s.header))) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in s.rows]
        lines.append("")
        lines += [f"- {n}" for n in s.notes]
        if s.notes:
            lines.append("")
    lines += [ANALYSIS_MARKER, ""]
    return "\n".join(lines) + previous


def kept_analysis(path: Path) -> str:
    """What follows the analysis marker in an existing report."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    _, marker, rest_of_text = text.partition(ANALYSIS_MARKER)
    return rest_of_text.lstrip("\n") if marker else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 round: proves the benchmarks run")
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--rounds", type=int, help="override the rounds of every benchmark")
    parser.add_argument("--output", type=Path, help="markdown report (default bench/RESULTS.md, "
                                                     "or bench/out/RESULTS-quick.md with --quick)")
    parser.add_argument("--json", type=Path, help="raw figures (default bench/out/results[-quick].json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in only if name not in RUNNERS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    sizes = QUICK if args.quick else FULL
    if args.rounds:
        sizes = Sizes(**{k: (args.rounds if k.endswith("_rounds") else v) for k, v in asdict(sizes).items()})
    mode = "quick" if args.quick else "full"
    out_dir = common.ROOT / "bench" / "out"
    output = args.output or (out_dir / "RESULTS-quick.md" if args.quick else common.ROOT / "bench" / "RESULTS.md")
    raw_path = args.json or out_dir / f"results{'-quick' if args.quick else ''}.json"

    started = time.perf_counter()
    info = common.machine_info()
    progress(f"{mode} run: {', '.join(only)}")
    sections = []
    try:
        for name in only:
            try:
                if name in TAKES_QUICK:
                    sections.append(RUNNERS[name](sizes, quick=args.quick))
                else:
                    sections.append(RUNNERS[name](sizes))
            except Exception:
                progress(f"{name} failed")
                traceback.print_exc()
                sections.append(Section(name, name, "", [], [], [], None, error=traceback.format_exc()))
    finally:
        try:
            common.delete_exchange()
        except Exception:
            logger.warning("could not delete %s", common.EXCHANGE, exc_info=True)
    info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    seconds = time.perf_counter() - started

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(sections, info, mode, seconds, kept_analysis(output)), encoding="utf-8")
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    raw_path.write_text(json.dumps({"mode": mode, "machine": info, "seconds": seconds, "sizes": asdict(sizes),
                                    "results": {s.key: {"rows": s.rows, "header": s.header, "raw": s.raw,
                                                        "error": s.error} for s in sections}},
                                   indent=1, default=str), encoding="utf-8")
    progress(f"wrote {output} and {raw_path} in {seconds:.0f} s")
    return 1 if any(s.error for s in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
