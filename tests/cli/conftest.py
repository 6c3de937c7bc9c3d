"""Fixtures of the command-line tests (helpers in clikit.py)."""

from __future__ import annotations

import pytest
from clikit import Listeners


@pytest.fixture
def listeners(tmp_path, broker_url):
    """Listener files in ``tmp_path``; their queues and exchanges are deleted after the test."""
    made = Listeners(tmp_path, broker_url)
    yield made
    made.forget()
