"""The overrides of ``tclisten run``, pure: generated from tclisten.options, their precedence,
and how they reach a YAML listener and one built in Python."""

from __future__ import annotations

import argparse
import doctest

import pytest

from tclisten.app import Listener
from tclisten.cli import overrides
from tclisten.cli.overrides import FLAGS, add_run_flags, apply_overrides, collect, listener_values
from tclisten.exceptions import ConfigError
from tclisten.options import OPTIONS


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_run_flags(parser)
    return parser.parse_args(list(argv))


def test_one_flag_per_cli_option_plus_the_runs_own():
    names = [flag.name for flag in FLAGS]
    assert [n for n in names if n in OPTIONS] == [name for name, option in OPTIONS.items() if option.cli]
    assert {"workers", "log_level", "log_format", "wait_for_broker"} <= set(names)
    assert {flag.env for flag in FLAGS} >= {"TCLISTEN_PREFETCH", "TCLISTEN_HANDLER_TIMEOUT", "TCLISTEN_WORKERS"}


def test_precedence_and_parsing():
    env = {"TCLISTEN_PREFETCH": "5", "TCLISTEN_HANDLER_TIMEOUT": "none", "TCLISTEN_LOG_LEVEL": "debug",
           "TCLISTEN_WAIT_FOR_BROKER": "2.5", "TCLISTEN_NAME": "not-an-option"}
    values = collect(parse("--prefetch", "20", "--grace-period", "0", "--workers", "2"), env)
    assert values == {"prefetch": 20, "grace_period": 0.0, "handler_timeout": None, "workers": 2,
                      "log_level": "DEBUG", "wait_for_broker": 2.5}
    assert listener_values(values) == {"prefetch": 20, "grace_period": 0.0, "handler_timeout": None}
    assert collect(parse("--handler-timeout", "none"), {"TCLISTEN_HANDLER_TIMEOUT": "60"}) == {"handler_timeout": None}
    with pytest.raises(ConfigError, match="TCLISTEN_CONCURRENCY: concurrency must be an integer >= 0"):
        collect(parse(), {"TCLISTEN_CONCURRENCY": "-1"})
    with pytest.raises(SystemExit):
        parse("--queue-type", "quorom")


def test_apply_overrides_to_a_python_listener():
    app = Listener("py-overrides", broker_url="amqp://guest:guest@127.0.0.1:5672//", prefetch=10)
    apply_overrides(app, {"broker_url": "amqp://other:pw@127.0.0.2:5672/v", "concurrency": 4, "grace_period": 1,
                          "handler_timeout": None, "queue_type": "quorum", "health_port": 0, "health_host": "::"})
    assert app.queue_name == "queue/other/py-overrides"
    assert app.address.where() == "127.0.0.2:5672 vhost 'v' as user 'other'"
    assert (app.concurrency, app.grace_period, app.handler_timeout, app.queue_type) == (4, 1.0, None, "quorum")
    assert (app.health_port, app.health_host) == (0, "::")
    assert app.topology.queue_type == "quorum"
    with pytest.raises(ConfigError, match="prefetch .10. must be at least concurrency .11."):
        apply_overrides(app, {"concurrency": 11, "grace_period": 9})
    assert (app.concurrency, app.grace_period) == (4, 1.0)  # left as it was
    with pytest.raises(ConfigError, match="prefetch must be an integer >= 1"):
        apply_overrides(app, {"prefetch": 0})
    classic = Listener("py-overflow", overflow="reject-publish-dlx")
    with pytest.raises(ConfigError, match="not supported by quorum queues"):
        apply_overrides(classic, {"queue_type": "quorum"})


def test_docstring_examples():
    result = doctest.testmod(overrides)
    assert result.failed == 0
    assert result.attempted > 0
