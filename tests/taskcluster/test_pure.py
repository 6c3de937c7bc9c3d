"""The REST side stands alone: tclisten.taskcluster works in a process where the AMQP stack
(and, for its pure modules, requests) cannot be imported at all; and every example in its
docstrings runs."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import tclisten.taskcluster
from support.blocked import run_without


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
