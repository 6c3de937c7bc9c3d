"""``tclisten.__all__`` stays honest: every name resolves, and import has no side effects."""

from __future__ import annotations

import subprocess
import sys

import tclisten
from tclisten.taskcluster import references


def test_every_exported_name_resolves():
    for name in tclisten.__all__:
        assert getattr(tclisten, name) is not None, name


def test_every_bundled_service_is_exported():
    assert set(references.bundled()) <= set(tclisten.__all__)


def test_unknown_name_is_an_attribute_error():
    try:
        tclisten.Nope
    except AttributeError as exc:
        assert "Nope" in str(exc)
    else:
        raise AssertionError("no error")


def test_import_reads_nothing_and_builds_nothing():
    code = ("import sys, tclisten; "
            "print(sorted(m for m in sys.modules if m.startswith('tclisten')), 'kombu' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['tclisten'] False"
