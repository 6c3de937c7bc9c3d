"""Run code in a fresh interpreter where some packages cannot be imported at all, as if they
were not installed: for the tests that keep tclisten's pure modules free of kombu, py-amqp
and requests (tests/test_pure_core.py, tests/taskcluster/test_pure.py)."""

from __future__ import annotations

import subprocess
import sys

from support.env import ROOT

# Installed before anything else is imported: importing a blocked top-level package (or
# any of its submodules) raises ImportError.
BLOCKER = """
import importlib.abc
import sys

BLOCKED = {blocked!r}
assert not BLOCKED & set(sys.modules), "already imported before the blocker"


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is not installed (blocked by the test)")
        return None


sys.meta_path.insert(0, Blocker())
for name in BLOCKED:
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise AssertionError(f"the blocker let {{name}} through")
"""


def run_without(blocked: set[str], code: str) -> str:
    """Run ``code`` in a fresh interpreter (from the checkout) where ``blocked`` cannot be
    imported; its stdout.  Fails the test, with the interpreter's stderr, if the code fails."""
    script = BLOCKER.format(blocked=set(blocked)) + code
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=str(ROOT), timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout
