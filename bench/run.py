#!/usr/bin/env python
"""Run tclisten's benchmarks against the local RabbitMQ and write ``bench/RESULTS.md``.

    /work/venv/bin/python bench/run.py            # full run, ~8 minutes, writes bench/RESULTS.md
    /work/venv/bin/python bench/run.py --quick    # tiny sizes, < 60 s, writes bench/out/RESULTS-quick.md
    /work/venv/bin/python bench/run.py --only dispatch,rest --rounds 3

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

from bench import common, dispatch, io_bound, memory, overhead, rest, startup  # noqa: E402

logger = logging.getLogger("bench")

ANALYSIS_MARKER = "<!-- analysis: written by hand, kept by bench/run.py -->"
BENCHMARKS = ("dispatch", "io_bound", "rest", "overhead", "memory", "startup")


@dataclass(frozen=True)
class Sizes:
    dispatch_messages: int
    dispatch_rounds: int
    io_messages: int
    io_rounds: int
    rest_calls: int
    rest_rounds: int
    overhead_messages: int
    overhead_rounds: int
    memory_messages: int
    startup_rounds: int


FULL = Sizes(dispatch_messages=20_000, dispatch_rounds=4, io_messages=4_000, io_rounds=3, rest_calls=600,
             rest_rounds=5, overhead_messages=20_000, overhead_rounds=5, memory_messages=100_000,
             startup_rounds=15)
QUICK = Sizes(dispatch_messages=300, dispatch_rounds=1, io_messages=100, io_rounds=1, rest_calls=20,
              rest_rounds=1, overhead_messages=1_000, overhead_rounds=1, memory_messages=2_500,
              startup_rounds=1)


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


def bench_dispatch(sizes: Sizes) -> Section:
    candidates = dispatch.CANDIDATES
    messages = common.make_messages(sizes.dispatch_messages)
    per_round: list[dict[str, dict]] = []
    queues: dict[str, str] = {}
    try:
        dispatch.prepare(candidates, queues)
        for r in range(sizes.dispatch_rounds):
            results = dispatch.run_round_robust(rotate(candidates, r), queues, messages)
            progress(f"dispatch round {r + 1}: " + ", ".join(
                f"{c} {v['msg_per_s']:,.0f}" for c, v in results.items()) + " msg/s")
            per_round.append(results)
    finally:
        dispatch.cleanup(queues)
    base = dispatch.BASELINE
    rows = []
    for candidate in candidates:
        rate = common.median(column(per_round, candidate, "msg_per_s"))
        ratio = common.median(ratio_column(per_round, candidate, base, "msg_per_s"))
        cpu = common.median(column(per_round, candidate, "cpu_us_per_msg"))
        cpu_ratio = common.median(ratio_column(per_round, candidate, base, "cpu_us_per_msg"))
        broker = common.median(column(per_round, candidate, "broker_cpu_us_per_msg"))
        left = max(column(per_round, candidate, "left_in_queue") or [0])
        target, ok = "", None
        if candidate.startswith("tclisten"):
            target = "≥ 1.0x (goal 1.5x)"
            ok = ratio >= 1.0
            if ratio >= 1.5:
                target += ", goal met"
        rows.append([candidate + (" (baseline)" if candidate == base else ""), fmt(rate), f"{ratio:.2f}x",
                     fmt(cpu), f"{cpu_ratio:.2f}x", fmt(broker), str(int(left)), target, verdict(ok)])
    return Section(
        "dispatch", "1. Dispatch throughput",
        f"{sizes.dispatch_messages:,} pre-published persistent task-completed messages (~677-byte JSON, "
        "10-word primary key, 1-2 CC routes) on a durable queue with 3 bindings, prefetch "
        f"{dispatch.PREFETCH}, trivial handler; {sizes.dispatch_rounds} interleaved rounds, each candidate "
        "in a fresh process.  Timed from the first message reaching the handler to the consume loop "
        "returning after the last ack.",
        ["candidate", "msg/s (median)", "ratio vs kombu-mixin", "client CPU µs/msg", "CPU ratio",
         "broker CPU µs/msg", "left unacked", "target", "verdict"],
        rows,
        ["Broker CPU is RabbitMQ's (beam.smp) CPU during the consume phase divided by the messages; "
         "the broker is shared with other work on this machine, so read it as indicative.",
         "`left unacked` must be 0: a candidate that stops without acking its last messages would "
         "show it here."],
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
            target, ok = f"≥ {io_bound.TARGET_MSG_PER_S} msg/s", rate >= io_bound.TARGET_MSG_PER_S
        rows.append([candidate + (" (baseline)" if candidate == io_bound.BASELINE else ""), fmt(rate),
                     f"{ratio:.2f}x", fmt(cpu), target, verdict(ok)])
    ceiling = io_bound.CONCURRENCY / io_bound.SLEEP
    return Section(
        "io_bound", "2. I/O-bound handlers",
        f"{sizes.io_messages:,} messages, each handler sleeps {io_bound.SLEEP * 1e3:.0f} ms, "
        f"concurrency {io_bound.CONCURRENCY}, prefetch {io_bound.PREFETCH}; {sizes.io_rounds} interleaved rounds.  "
        f"Ceiling: {io_bound.CONCURRENCY} / {io_bound.SLEEP * 1e3:.0f} ms = {ceiling:,.0f} msg/s.",
        ["candidate", "msg/s (median)", "ratio vs kombu-threadpool", "client CPU µs/msg", "target", "verdict"],
        rows, [], per_round)


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
            target, ok = "throughput ≥ 1.3x, CPU/call ≤ 0.75x", ratio >= 1.3 and cpu_ratio <= 0.75
        rows.append([candidate + (" (baseline)" if candidate == rest.BASELINE else ""), fmt(rate),
                     f"{ratio:.2f}x", f"{cpu:.2f}", f"{cpu_ratio:.2f}x", target, verdict(ok)])
    return Section(
        "rest", "3. REST calls",
        f"{sizes.rest_calls:,} sequential Hawk-signed `queue.task(taskId)` calls per client and round "
        f"(after 10 warm-up calls), {sizes.rest_rounds} interleaved rounds, each client in a fresh process.  "
        f"Server: {kind}, in a separate process (its CPU is not counted).  Client CPU is "
        "`time.process_time()` of the client process.",
        ["client", "calls/s (median)", "ratio vs taskcluster", "client CPU ms/call", "CPU ratio", "target",
         "verdict"],
        rows, [], per_round)


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
        "overhead", "4. Per-message overhead, 100 bindings, no broker",
        f"`Listener.dispatch` of {sizes.overhead_messages:,} messages in a hot loop, in a fresh process per "
        f"round ({sizes.overhead_rounds} rounds), 100 bindings on one queue (40 taskGroupId, 30 CC routes, "
        "20 provisionerId+workerType, 10 schedulerId), each message matching one binding and carrying "
        "1-2 CC keys.  CPU time of the process per message.",
        ["path", "µs/msg (median)", "µs/msg (best round)", "target", "verdict"],
        rows, [], per_round)


def bench_memory(sizes: Sizes) -> Section:
    candidates = memory.CANDIDATES
    messages = common.make_messages(sizes.memory_messages)
    results: dict[str, dict] = {}
    queues: dict[str, str] = {}
    try:
        dispatch.prepare(candidates, queues)
        results = dispatch.run_round_robust(list(candidates), queues, messages,
                                  prefetch=memory.PREFETCH, timeout=900, consumer_for=memory.consumer_for)
        progress("memory: " + ", ".join(f"{c} growth {v['growth_mib']:.2f} MiB" for c, v in results.items()))
    finally:
        dispatch.cleanup(queues)
    rows = []
    for candidate in candidates:
        r = results[candidate]
        target, ok = "", None
        if candidate == "tclisten":
            target, ok = f"growth < {memory.TARGET_GROWTH_MIB:g} MiB", r["growth_mib"] < memory.TARGET_GROWTH_MIB
        rows.append([candidate + (" (reference)" if candidate == memory.BASELINE else ""),
                     f"{r['rss_reference_mib']:.1f} (after {r['reference_after']:,})", f"{r['rss_end_mib']:.1f}", f"{r['growth_mib']:.2f}",
                     " ".join(f"{x:.1f}" for x in r["samples_mib"]), target, verdict(ok)])
    return Section(
        "memory", "5. Memory across a long run",
        f"{sizes.memory_messages:,} messages through one consumer process per candidate (prefetch "
        f"{memory.PREFETCH}); RSS sampled by the handler after every tenth.  Growth = RSS at the end − RSS "
        f"at the first sample past both a tenth of the run and {2 * memory.PREFETCH:,} messages (two prefetch "
        "windows).",
        ["candidate", "RSS reference (MiB)", "RSS at end (MiB)", "growth (MiB)", "samples (MiB)", "target",
         "verdict"],
        rows, [], results)


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
        "startup", "6. Start-up",
        f"Each snippet in a fresh `python -c` subprocess, {sizes.startup_rounds} interleaved rounds, wall "
        "time from spawn to exit measured by the parent; net = minus the bare interpreter's median.",
        ["snippet", "ms (median)", "net ms", "ratio vs import taskcluster", "target", "verdict"],
        rows, [], per_round)


RUNNERS: dict[str, Callable[[Sizes], Section]] = {
    "dispatch": bench_dispatch, "io_bound": bench_io_bound, "rest": bench_rest,
    "overhead": bench_overhead, "memory": bench_memory, "startup": bench_startup,
}


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
