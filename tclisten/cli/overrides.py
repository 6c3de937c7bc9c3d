"""What ``tclisten run`` may change of a listener: flags and ``TCLISTEN_*`` variables.

The flags are generated from the options :mod:`tclisten.options` marks ``cli`` (their help,
their defaults), plus the run's own: ``--workers`` (processes), ``--log-level``,
``--log-format`` and ``--wait-for-broker``.  Precedence: the command line, then
``TCLISTEN_<NAME>``, then the target's own settings (its YAML file or its Python code).

>>> parser = argparse.ArgumentParser()
>>> add_run_flags(parser)
>>> collect(parser.parse_args(["--prefetch", "20"]), {"TCLISTEN_PREFETCH": "5", "TCLISTEN_CONCURRENCY": "2"})
{'prefetch': 20, 'concurrency': 2}
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .. import options as opts
from ..config import PROCESS_OPTIONS, listener_keywords
from ..exceptions import ConfigError
from .targets import UsageError

__all__ = ["FLAGS", "Flag", "add_run_flags", "apply_overrides", "collect", "listener_values"]


@dataclass(frozen=True)
class Flag:
    """One override: its option name, how text becomes a value, and its help."""

    name: str
    parse: Callable[[str], Any]
    help: str
    metavar: str

    @property
    def flag(self) -> str:
        return opts.flag_of(self.name)

    @property
    def env(self) -> str:
        return opts.env_of(self.name)


def _choice(name: str, choices: tuple[str, ...], upper: bool = False) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().upper() if upper else text.strip()
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {text!r}")
        return value

    return parse


def seconds_or_none(text: str) -> float | None:
    """Seconds to wait for the broker: a number >= 0, or none (for ever)."""
    if text.strip().lower() in ("none", "forever", ""):
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise ConfigError(f"wait_for_broker must be a number of seconds >= 0 or none, not {text!r}")
    return value


def _workers(text: str) -> int:
    option = PROCESS_OPTIONS["workers"]
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < (option.minimum or 1):
        raise ConfigError(f"workers must be an integer >= {option.minimum:g}, not {text!r}")
    return value


def _metavar(option: opts.Option) -> str:
    if option.choices:
        return "{" + ",".join(option.choices) + "}"
    if option.kind == "int":
        return "PORT" if option.name.endswith("_port") else "N"
    if option.kind == "number":
        return "SECONDS" if "seconds" in option.help else "N"
    return "URL" if option.kind == "urls" else option.name.rsplit("_", 1)[-1].upper()


def _from_option(option: opts.Option) -> Flag:
    default = option.default
    shown = "" if default is None else f", else {default:g}" if isinstance(default, float) else f", else {default}"
    return Flag(option.name, functools.partial(opts.parse_text, option.name),
                f"{option.help} (default: the target's{shown})", _metavar(option))


#: Every override of ``tclisten run``, in the order --help shows them.
FLAGS: tuple[Flag, ...] = (
    *(_from_option(option) for option in opts.OPTIONS.values() if option.cli),
    *(Flag(name, _workers, f"{option.help} (default: the file's workers, else {option.default})", "N")
         for name, option in PROCESS_OPTIONS.items() if name not in opts.OPTIONS),
    Flag("log_level", _choice("log level", opts.LOG_LEVELS, upper=True),
         f"logging level: {', '.join(opts.LOG_LEVELS)} (default: the file's logging.level, else INFO)",
         "LEVEL"),
    Flag("log_format", _choice("log format", opts.LOG_FORMATS),
         "text, or json: one JSON object per line (default: the file's logging.format, else text)",
         "{" + ",".join(opts.LOG_FORMATS) + "}"),
    Flag("wait_for_broker", seconds_or_none, "seconds to wait for the broker at the start, retrying with "
         "backoff (default: for ever; a refused login fails at once)", "SECONDS"),
)
_BY_NAME = {flag.name: flag for flag in FLAGS}


def _argparse_type(flag: Flag) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return flag.parse(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = flag.name
    return convert


def add_run_flags(parser: argparse.ArgumentParser, names: tuple[str, ...] | None = None) -> None:
    """Add the override flags (all, or those ``names``) to ``parser``; a flag left out of
    the command line is absent from the parsed namespace."""
    group = parser.add_argument_group("overrides (command line > TCLISTEN_<NAME> > the target's settings)")
    for flag in FLAGS:
        if names is None or flag.name in names:
            group.add_argument(flag.flag, dest=flag.name, type=_argparse_type(flag), metavar=flag.metavar,
                               default=argparse.SUPPRESS, help=f"{flag.help}; env {flag.env}")


def collect(args: argparse.Namespace, environ: Mapping[str, str],
            names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The overrides in force: each flag given on the command line, else its ``TCLISTEN_*``
    variable (a bad one is a ConfigError naming the variable, never its value if secret)."""
    values: dict[str, Any] = {}
    for flag in FLAGS:
        if names is not None and flag.name not in names:
            continue
        if hasattr(args, flag.name):
            values[flag.name] = getattr(args, flag.name)
        elif environ.get(flag.env):
            try:
                values[flag.name] = flag.parse(environ[flag.env])
            except ConfigError as exc:
                raise UsageError(f"{flag.env}: {exc}") from None
    return values


def listener_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The overrides that are Listener keywords (not settings of the run, like ``workers``)."""
    keywords = listener_keywords()
    return {name: value for name, value in values.items() if name in keywords}


def apply_overrides(app: Any, values: Mapping[str, Any]) -> Any:
    """Set overrides on a Listener built in Python, checked as its constructor checks them
    (:meth:`tclisten.app.Listener.configure`); nothing changes when one does not fit."""
    if "broker_url" in values and not values["broker_url"]:
        raise UsageError("--broker-url is empty")
    return app.configure(**values)
