"""Benchmark 6: start-up cost, each candidate in a fresh interpreter.

Each round runs every snippet below in a new ``python -c`` subprocess (from the repository
root, so ``import tclisten`` is the working tree) and times it from the parent, wall clock,
process start to exit.  ``python -c pass`` is the interpreter's own start-up, subtracted to
give the net cost of each import.

>>> sorted(SNIPPETS)
['python (no import)', 'taskcluster: import taskcluster', 'tclisten: import + every client and exchange class', 'tclisten: import + everything in __all__']
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench import common

BASELINE = "taskcluster: import taskcluster"
CANDIDATE = "tclisten: import + every client and exchange class"

_EVERY_CLASS = """
import tclisten
from tclisten.taskcluster.client import bundled_services
from tclisten.exchanges import __all__ as exchange_names
classes = [getattr(tclisten, name) for name in bundled_services()]
classes += [getattr(tclisten, name) for name in exchange_names if name.endswith("Events")]
assert len(classes) > 15, classes
"""
_EVERYTHING = """
import tclisten
for name in tclisten.__all__:
    getattr(tclisten, name)
"""
_TASKCLUSTER = """
import taskcluster
classes = [getattr(taskcluster, name) for name in dir(taskcluster) if name[:1].isupper()]
"""

SNIPPETS = {
    "python (no import)": "pass",
    BASELINE: _TASKCLUSTER,
    CANDIDATE: _EVERY_CLASS,
    "tclisten: import + everything in __all__": _EVERYTHING,
}


def time_snippet(code: str) -> float:
    """Seconds from spawning ``python -c code`` to its exit."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=common.ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def run_round(order: list[str]) -> dict[str, float]:
    """One round: every snippet once, in ``order``; milliseconds each."""
    return {name: time_snippet(SNIPPETS[name]) * 1e3 for name in order}
