"""The ``tclisten`` command: run, inspect and repair listeners.

- :mod:`.commands`: the argument parser, the commands, logging set-up, exit statuses;
- :mod:`.targets`: what ``tclisten run|bindings|parked TARGET`` loads (YAML, module, script);
- :mod:`.demo`: ``tclisten demo``, the offline main job.
"""

from __future__ import annotations

from .commands import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "main"]
