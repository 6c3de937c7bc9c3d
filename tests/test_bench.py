"""The benchmarks still run: ``bench/run.py --quick`` on tiny sizes against the real broker.

Benchmarks, not timed tests: this asserts only that every benchmark completes and reports
numbers, never how fast anything is (speed is judged in bench/RESULTS.md, as ratios).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ("dispatch", "tls", "memory", "failure", "workers", "io_bound", "rest", "overhead", "startup")
_NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?x?$")
#: A row for a candidate that cannot run here (an optional peer missing), said in its second cell.
_NOT_RUN = ("not installed", "skipped in quick mode", "cannot run here")


def _numbers(row: list[str]) -> list[float]:
    return [float(cell.replace(",", "").rstrip("x")) for cell in row if _NUMBER.match(cell)]


def test_quick_run_completes_and_reports_numbers(tmp_path: Path, broker_url: str) -> None:
    report, raw = tmp_path / "RESULTS.md", tmp_path / "results.json"
    env = dict(os.environ, TCLISTEN_BENCH_BROKER_URL=broker_url)
    env.pop("TCLISTEN_BENCH_EXCHANGE_PREFIX", None)  # a fresh, unique exchange for this run
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--output", str(report), "--json", str(raw)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stderr[-5000:]

    results = json.loads(raw.read_text())["results"]
    assert sorted(results) == sorted(BENCHMARKS)
    for name, section in results.items():
        assert section["error"] is None, f"{name}: {section['error']}"
        assert section["rows"], name
        for row in section["rows"]:
            if any(reason in cell for cell in row[1:2] for reason in _NOT_RUN):
                continue
            numbers = _numbers(row)
            assert numbers, f"{name}: no number in {row}"
            assert all(math.isfinite(n) and n >= 0 for n in numbers), f"{name}: {row}"

    text = report.read_text()
    for title in ("Dispatch throughput", "over TLS", "Backlog drain", "failure path", "Worker processes", "I/O-bound",
                  "REST calls", "Per-message overhead", "Memory", "Start-up"):
        assert title in text
    assert "| RabbitMQ |" in text and "| kombu |" in text
