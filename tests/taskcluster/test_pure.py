"""The REST side stands alone: tclisten.taskcluster works in a process where the AMQP stack
(and, for its pure modules, requests) cannot be imported at all; and every example in its
docstrings runs."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import tclisten.taskcluster

CHECKOUT = Path(__file__).resolve().parents[2]

# Installed before anything else is imported: importing a blocked top-level package (or
# any of its submodules) raises ImportError, as if it were not installed.
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
    imported; its stdout."""
    script = BLOCKER.format(blocked=set(blocked)) + code
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=str(CHECKOUT), timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_rest_side_needs_no_amqp_stack():
    out = run_without({"kombu", "amqp"}, """
import tclisten.taskcluster.calls
import tclisten.taskcluster.credentials
import tclisten.taskcluster.hawk
import tclisten.taskcluster.references
import tclisten.taskcluster.utils
from tclisten.taskcluster.client import Queue

print(Queue({"rootUrl": "https://tc.example.com"}).buildUrl("task", "abc"))
print(sorted(name for name in sys.modules if name.partition(".")[0] in {"kombu", "amqp"}))
""")
    assert out.splitlines() == ["https://tc.example.com/api/queue/v1/task/abc", "[]"]


def test_the_pure_modules_need_no_http_stack_either():
    out = run_without({"kombu", "amqp", "requests"}, """
from tclisten.taskcluster import calls, credentials, references, utils

spec = calls.CallSpec.from_function(references.bundled()["Queue"].function("task"))
print(spec.bind(("a/b",), {})[0])
print(utils.scopeMatch(["queue:*"], [["queue:get-task:x"]]))
print(credentials.read_options({"credentials": {"clientId": "c", "accessToken": "t"}}, {}).credentials)
""")
    assert out.splitlines() == ["/task/a%2Fb", "True", "Credentials(clientId='c', accessToken=<hidden>)"]


MODULES = sorted(f"{tclisten.taskcluster.__name__}.{info.name}"
                 for info in pkgutil.iter_modules(tclisten.taskcluster.__path__))


def test_every_module_is_checked():
    assert {name.rpartition(".")[2] for name in MODULES} >= {
        "calls", "client", "credentials", "docs", "hawk", "references", "utils"}


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    examples = sum(len(test.examples) for test in doctest.DocTestFinder().find(module))
    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted == examples > 0, f"{module_name} has no runnable example"
