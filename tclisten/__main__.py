"""``python -m tclisten``: the same as the ``tclisten`` command."""

from __future__ import annotations

import sys

from .cli.commands import main

if __name__ == "__main__":
    sys.exit(main())
