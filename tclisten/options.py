"""The listener's options, declared once: name, kind, default, limits, help.

:class:`~tclisten.app.Listener` checks its keyword arguments with :func:`check`, the YAML
loader reads each top-level key through the same declarations, and ``tclisten run`` builds
its overrides (``--prefetch``, ``TCLISTEN_PREFETCH``, ...) from the options marked ``cli``.

>>> OPTIONS["prefetch"].default, OPTIONS["prefetch"].minimum
(200, 1)
>>> check("prefetch", 0)
Traceback (most recent call last):
...
tclisten.exceptions.ConfigError: prefetch must be an integer >= 1, not 0
>>> parse_text("handler_timeout", "none") is None, parse_text("concurrency", "4")
(True, 4)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .exceptions import ConfigError, did_you_mean

__all__ = ["LOG_FORMATS", "LOG_LEVELS", "OPTIONS", "OVERFLOW_POLICIES", "Option", "check", "parse_text"]

OVERFLOW_POLICIES = ("drop-head", "reject-publish", "reject-publish-dlx")
QUEUE_TYPES = ("classic", "quorum")
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
LOG_FORMATS = ("text", "json")
KINDS = {"str": "a string", "int": "an integer", "number": "a number", "bool": "true or false",
         "urls": "a URL or a list of URLs", "mapping": "a mapping"}


def flag_of(name: str) -> str:
    """The command-line flag of an option or a setting: ``prefetch`` -> ``--prefetch``."""
    return "--" + name.replace("_", "-")


def env_of(name: str) -> str:
    """Its environment variable: ``prefetch`` -> ``TCLISTEN_PREFETCH``."""
    return "TCLISTEN_" + name.upper()


@dataclass(frozen=True)
class Option:
    """One listener option.  ``nullable``: None is a value of its own (``handler_timeout``:
    no limit); ``cli``: ``tclisten run`` can override it; ``secret``: never shown."""

    name: str
    kind: str
    default: Any
    help: str
    minimum: float | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False
    cli: bool = False
    secret: bool = False

    @property
    def flag(self) -> str:
        return flag_of(self.name)

    @property
    def env(self) -> str:
        return env_of(self.name)

    def describe(self) -> str:
        text = KINDS[self.kind]
        if self.minimum is not None:
            text += f" >= {self.minimum:g}"
        if self.choices:
            text = "one of " + ", ".join(self.choices)
        return text + (" or none" if self.nullable else "")


_DECLARED = (
    Option("broker_url", "urls", None, "AMQP URL, or several for failover ('url1;url2' or a list); "
           "default TCLISTEN_BROKER_URL, else Pulse credentials", cli=True, secret=True),
    Option("pulse_username", "str", None, "Pulse user (default PULSE_USERNAME)"),
    Option("pulse_password", "str", None, "Pulse password (default PULSE_PASSWORD)", secret=True),
    Option("pulse_host", "str", None, "Pulse host (default PULSE_HOST, else pulse.mozilla.org)"),
    Option("prefetch", "int", 200, "deliveries the broker may send ahead of the acks", minimum=1, cli=True),
    Option("concurrency", "int", 1, "handlers running at once (1: on the connection's thread)",
           minimum=0, cli=True),
    Option("heartbeat", "int", 60, "AMQP heartbeat in seconds (0: none)", minimum=0),
    Option("grace_period", "number", 30.0, "seconds running handlers get to finish after a stop signal",
           minimum=0, cli=True),
    Option("handler_timeout", "number", 1500.0, "seconds a handler may run before it counts as failed "
           "(none: no limit; the default stays below RabbitMQ's 30-minute consumer_timeout)",
           minimum=0.001, nullable=True, cli=True),
    Option("max_length", "int", None, "most messages the queue holds (x-max-length)", minimum=1),
    Option("overflow", "str", None, "what the queue does when full (x-overflow)", choices=OVERFLOW_POLICIES),
    Option("expires", "int", None, "milliseconds an unused queue lives (x-expires)", minimum=1),
    Option("backlog_warning", "int", None, "warn when this many messages wait", minimum=1),
    Option("declare_exchanges", "bool", False, "declare missing exchanges (a local broker only)"),
    Option("queue_type", "str", "classic", "classic, or quorum (replicated in a cluster)",
           choices=QUEUE_TYPES, cli=True),
    Option("prune_bindings", "bool", True, "remove bindings of the queue the code no longer declares"),
    Option("validate", "bool", False, "check each body against the exchange's JSON schema"),
    Option("workers", "int", 1, "processes consuming the same queue (tclisten run; competing consumers)",
           minimum=1, cli=True),
    Option("health_port", "int", None, "serve /healthz and /metrics on this port (0: any free port)",
           minimum=0, cli=True),
    Option("health_host", "str", "127.0.0.1", "address the health server binds", cli=True),
    Option("taskcluster", "mapping", None, "options of the handlers' REST clients (rootUrl, credentials, ...)",
           secret=True),
    Option("retry", "mapping", None, "retry policy: max_attempts, delay, backoff, max_delay"),
    Option("config", "mapping", None, "anything handlers read as ctx.config", secret=True),
)

OPTIONS: dict[str, Option] = {option.name: option for option in _DECLARED}


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "urls":
        return isinstance(value, str) or (isinstance(value, (list, tuple)) and bool(value)
                                          and all(isinstance(item, str) for item in value))
    if kind == "mapping":
        return isinstance(value, dict) or hasattr(value, "keys")
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind == "int" else isinstance(value, (int, float))


def problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for option ``name`` (None when it is fine)."""
    option = OPTIONS[name]
    if value is None:
        return None  # the default (or, for a nullable option, no limit)
    if not _is_kind(value, option.kind):
        return f"must be {option.describe()}"
    if option.choices and value not in option.choices:
        hint = did_you_mean(str(value), option.choices).strip()
        return f"must be one of {', '.join(option.choices)}" + (f" ({hint})" if hint else "")
    if option.minimum is not None and value < option.minimum:
        return f"must be {option.describe()}"
    return None


def check(name: str, value: Any) -> Any:
    """``value`` if it fits option ``name``, else a ConfigError naming both (never the value
    of a secret option)."""
    wrong = problem(name, value)
    if wrong is not None:
        shown = "the value given" if OPTIONS[name].secret else repr(value)
        raise ConfigError(f"{name} {wrong}, not {shown}", option=name)
    return value


_NONE_WORDS = ("none", "null", "off", "")
_BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def parse_text(name: str, text: str) -> Any:
    """An option's value from command-line or environment text (``none`` for no limit)."""
    option = OPTIONS[name]
    stripped = text.strip()
    if option.nullable and stripped.lower() in _NONE_WORDS:
        return None
    if option.kind == "bool":
        value: Any = _BOOL_WORDS.get(stripped.lower())
    elif option.kind in ("int", "number"):
        try:
            value = int(stripped) if option.kind == "int" else float(stripped)
        except ValueError:
            value = None
    else:
        value = stripped
    if value is None:
        shown = "the value given" if option.secret else repr(text)
        raise ConfigError(f"{name} must be {option.describe()}, not {shown}", option=name)
    return check(name, value)
