"""The listener's pure core stands alone: the modules that decide what happens to a message
(dispatch, the retry and ack policy, the x-tclisten-* header codec, topic matching, the
message, options, redaction, the ack window) import and run their examples in a process where
kombu, py-amqp and requests cannot be imported at all (STYLE.md: keep the pure parts pure;
tests/taskcluster/test_pure.py does the same for the REST side)."""

from __future__ import annotations

import pytest

from support.blocked import run_without

PURE = ("tclisten.ackwindow", "tclisten.dispatch", "tclisten.headers", "tclisten.matching",
        "tclisten.message", "tclisten.options", "tclisten.policy", "tclisten.redact")
BLOCKED = {"kombu", "amqp", "requests"}


def test_the_pure_modules_import_without_kombu_amqp_or_requests():
    out = run_without(BLOCKED, f"""
import importlib
for name in {PURE!r}:
    importlib.import_module(name)
print(sorted(name for name in sys.modules if name.partition(".")[0] in {BLOCKED!r}))
print(sorted(name for name in sys.modules if name.startswith("tclisten")))
""")
    blocked_loaded, ours = out.splitlines()
    assert blocked_loaded == "[]"
    # they lean on nothing of tclisten but each other and the exceptions
    assert set(eval(ours)) <= {"tclisten", "tclisten.exceptions", *PURE}


@pytest.mark.parametrize("module_name", PURE)
def test_their_examples_run_without_them(module_name):
    out = run_without(BLOCKED, f"""
import doctest, importlib
result = doctest.testmod(importlib.import_module({module_name!r}))
print("doctest:", result.failed, result.attempted)
""")
    *report, last = out.splitlines()
    _, failed, attempted = last.split()
    assert failed == "0", "\n".join(report)
    assert int(attempted) > 0, f"{module_name} has no runnable example"
