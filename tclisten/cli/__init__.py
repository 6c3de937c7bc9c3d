"""The ``tclisten`` command: run, inspect and repair listeners.

- :mod:`.commands`: the argument parser, the offline commands (bindings, replay, references),
  errors and exit statuses;
- :mod:`.running`: ``tclisten run``, its logging and its stop summary;
- :mod:`.overrides`: the run's flags and ``TCLISTEN_*`` variables, generated from
  :mod:`tclisten.options`;
- :mod:`.operate`: what acts on the broker (parked, bindings --diff, delete, migrate, publish,
  record);
- :mod:`.targets`: what ``TARGET`` loads (YAML, module, script), always without consuming;
- :mod:`.demo`: ``tclisten demo``, the offline main job.
"""

from __future__ import annotations

from .commands import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "main"]
