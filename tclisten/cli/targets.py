"""What ``tclisten run|bindings|replay|parked|delete|migrate TARGET`` loads: a YAML file, a
module or a script.

A target is always imported inside :func:`tclisten.app.inspecting`: a script whose last line
is ``app.run()`` (or ``tclisten.run()``) returns from it at once instead of consuming, and the
command decides what to do with the listener (``tclisten run`` runs it, with its overrides).

>>> from tclisten.cli.demo import examples_dir
>>> app, config = load_target(str(examples_dir() / "listener.yaml"), lenient=True)
>>> config.name, [b.exchange.rsplit("/", 1)[1] for b in app.bindings]
('failure-mailer', ['task-failed', 'task-completed'])
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Mapping

from ..exceptions import ConfigError

__all__ = ["FACTORY_NAMES", "UsageError", "load_target"]


class UsageError(ConfigError):
    """A command line that cannot be carried out as given (exit status 2)."""


def _is_listener(value: Any) -> bool:
    from ..app import Listener

    return isinstance(value, Listener)


#: Functions a module may define to build its listener (as Flask looks for create_app).
FACTORY_NAMES = ("create_listener", "make_listener")


def _listener_in(module: Any, target: str) -> Any:
    """The one Listener a module defines, else what its ``create_listener()`` returns, else
    the default listener its ``@tclisten.on`` decorators filled."""
    found = {name: value for name, value in vars(module).items()
             if not name.startswith("_") and _is_listener(value)}
    if len(found) == 1:
        return next(iter(found.values()))
    if len(found) > 1:
        names = ", ".join(sorted(found))
        raise UsageError(f"{target} defines several listeners ({names}); name one, e.g. {target}:{sorted(found)[0]}")
    for name in FACTORY_NAMES:
        factory = getattr(module, name, None)
        if callable(factory):
            app = factory()
            if not _is_listener(app):
                raise UsageError(f"{target}:{name}() returned {type(app).__name__}, not a tclisten Listener")
            return app
    from ..app import default_listener

    app = default_listener()
    if not app.handlers:
        raise UsageError(f"{target} defines no Listener, no {FACTORY_NAMES[0]}() and registers no handler "
                         "with tclisten.on")
    return app


def load_target(target: str, *, overrides: Mapping[str, Any] | None = None,
                lenient: bool = False) -> tuple[Any, Any]:
    """``(listener, config)`` for ``listener.yaml``, ``package.module[:attr]`` or
    ``script.py[:attr]``; ``config`` is the :class:`~tclisten.config.ListenerConfig` of a
    YAML target, else None.

    ``attr`` names a Listener or a function that returns one; without it the module's only
    Listener is taken, else its ``create_listener()``, else the default listener of
    ``tclisten.on`` (named after the script or module unless ``TCLISTEN_NAME`` is set).
    ``overrides`` (Listener keywords) win over the target's settings; ``lenient`` loads a
    YAML file whose handler-only sections name unset variables (for inspecting).
    """
    from ..app import inspecting

    with inspecting():
        try:
            app, config = _load(target, dict(overrides or {}), lenient)
        except SystemExit as exc:  # a script that exits while imported
            raise UsageError(f"{target} exited (status {exc.code}) while being imported: guard what it runs "
                             "with if __name__ == '__main__':") from None
    return app, config


def _load(target: str, overrides: dict[str, Any], lenient: bool) -> tuple[Any, Any]:
    from ..config import build_listener, import_object, load_config
    from .overrides import apply_overrides

    path_part = target.split(":", 1)[0] if not os.path.exists(target) else target
    if path_part.endswith((".yaml", ".yml")):
        config = load_config(path_part, lenient=lenient)
        return build_listener(config, overrides=overrides), config
    cwd = os.getcwd()
    if cwd not in sys.path:  # like `python -m`: modules of the current folder import
        sys.path.insert(0, cwd)
    spec, _, attr = target.partition(":")
    if spec.endswith(".py") and not Path(spec).is_file():
        raise UsageError(f"{spec}: no such file")
    default_name = Path(spec).stem if spec.endswith(".py") else spec.rsplit(".", 1)[-1]
    name_from_target = "TCLISTEN_NAME" not in os.environ
    if name_from_target:  # as when the script runs itself: its default listener is named after it
        os.environ["TCLISTEN_NAME"] = default_name
    try:
        value = import_object(target, base=cwd)
        if not attr:
            value = _listener_in(value, target)
        elif not _is_listener(value) and callable(value):
            value = value()  # a listener factory
    finally:
        if name_from_target:
            del os.environ["TCLISTEN_NAME"]
    if not _is_listener(value):
        raise UsageError(f"{target} is {type(value).__name__}, not a tclisten Listener")
    return apply_overrides(value, overrides) if overrides else value, None
