"""Every example in tclisten's docstrings runs, module by module, across the whole package
(each module's own tests may run them too; this is the net that catches a module nobody
checks).  A module with examples must run at least one of them: examples that need a broker
or a live deployment are marked ``# doctest: +SKIP`` in the module, and a module whose every
example needs one is listed in ONLY_SKIPPED below."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from types import ModuleType

import pytest

import tclisten

#: Packages that ship with tclisten but are not its code: the example scripts (run by
#: tests/test_examples.py, their doctests included) and the bundled reference data.
NOT_CODE = frozenset({"tclisten.examples", "tclisten.taskcluster.reference_data"})

#: Modules whose every example needs a broker or a running program.
ONLY_SKIPPED: frozenset[str] = frozenset()


def _modules(package: ModuleType) -> list[str]:
    """``package`` and every module under it, by name, without importing NOT_CODE."""
    names = [package.__name__]
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if info.name in NOT_CODE:
            continue
        if info.ispkg:
            names += _modules(importlib.import_module(info.name))
        else:
            names.append(info.name)
    return names


MODULES = _modules(tclisten)


def test_the_walk_finds_every_part_of_the_package():
    assert {"tclisten.app", "tclisten.cli.commands", "tclisten.taskcluster.client",
            "tclisten.testing.kit", "tclisten.matching"} <= set(MODULES)
    assert not NOT_CODE & set(MODULES)


#: Modules of optional extras, and the package each needs.
EXTRAS = {"tclisten.otel": "opentelemetry.trace"}


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name):
    if module_name in EXTRAS:
        pytest.importorskip(EXTRAS[module_name])
    module = importlib.import_module(module_name)
    examples = sum(len(test.examples) for test in doctest.DocTestFinder().find(module))
    result = doctest.testmod(module)
    assert result.failed == 0, f"{result.failed} example(s) of {module_name} failed (printed above)"
    if examples and module_name not in ONLY_SKIPPED:
        assert result.attempted > 0, f"every example of {module_name} is skipped"
