"""Where things are, for the tests: the checkout, the optional shared data, the broker."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "references"
REALWORLD = ROOT.parent / "shared" / "realworld"
BROKER_URL = os.environ.get("TCLISTEN_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
