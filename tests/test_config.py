"""Listener YAML files: a good file, every kind of mistake named by file, line and key,
environment expansion, secrets kept out of errors, and the Listener built from a file."""

from __future__ import annotations

import dataclasses
import textwrap
import uuid

import pytest

from tclisten.config import ListenerConfig, build_listener, import_object, load_config
from tclisten.exceptions import ConfigError

HANDLERS = """\
calls = []

def on_failed(message, ctx):
    calls.append(("failed", message.routing_key))

def on_indexed(message, ctx):
    calls.append(("indexed", message.routing_key))
"""

GOOD = """\
name: ci-reactor
broker_url: ${BROKER:-amqp://guest:guest@127.0.0.1:5672//}
taskcluster:
  rootUrl: https://tc.example.com
  credentials:
    clientId: project/ci
    accessToken: ${TC_TOKEN}
  maxRetries: 3
prefetch: ${PREFETCH:-100}
concurrency: 2
max_length: 20000
overflow: reject-publish
declare_exchanges: true
retry:
  max_attempts: 3
  delay: 0.5
logging:
  level: debug
config:
  channel: "#ci"
  price: $$5
  nested: {a: [1, 2]}
bindings:
  - exchange: QueueEvents.taskFailed
    fields:
      provisionerId: proj-example
      runId: 0
    handler: handlers.py:on_failed
  - exchange: QueueEvents.taskCompleted
    route: index.project.example.#
    handler: handlers.py:on_indexed
    name: indexed
"""


def write(tmp_path, text: str, handlers: str = HANDLERS, name: str = "listener.yaml"):
    (tmp_path / "handlers.py").write_text(handlers)
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def error_of(path, environ=None, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=environ if environ is not None else {"TC_TOKEN": "s3cr3t-token"},
                    **kwargs)
    return info.value


# --------------------------------------------------------------------------- good files


def test_good_file(tmp_path):
    cfg = load_config(write(tmp_path, GOOD), environ={"TC_TOKEN": "s3cr3t-token"})
    assert isinstance(cfg, ListenerConfig)
    assert cfg.name == "ci-reactor"
    assert cfg.broker_url == "amqp://guest:guest@127.0.0.1:5672//"
    assert cfg.prefetch == 100
    assert cfg.concurrency == 2  # '${PREFETCH:-100}' became an int
    assert cfg.max_length == 20000
    assert cfg.overflow == "reject-publish"
    assert cfg.declare_exchanges is True
    assert cfg.retry == {"max_attempts": 3, "delay": 0.5}
    assert cfg.log_level == "DEBUG"
    assert cfg.config == {"channel": "#ci", "price": "$5", "nested": {"a": [1, 2]}}
    assert type(cfg.config["nested"]) is dict  # plain dicts reach the handlers
    assert cfg.taskcluster == {"rootUrl": "https://tc.example.com", "maxRetries": 3,
                               "credentials": {"clientId": "project/ci", "accessToken": "s3cr3t-token"}}
    first, second = cfg.bindings
    assert (first.exchange, first.fields, first.route, first.line) == (
        "QueueEvents.taskFailed", {"provisionerId": "proj-example", "runId": 0}, None, 24)
    assert first.function.__name__ == "on_failed"
    assert (second.route, second.name, second.line) == ("index.project.example.#", "indexed", 29)
    # secrets stay out of the repr
    assert "s3cr3t" not in repr(cfg)
    assert "guest:guest" not in repr(cfg)
    assert "#ci" not in repr(cfg)
    kwargs = cfg.listener_kwargs()
    assert kwargs["prefetch"] == 100
    assert "heartbeat" not in kwargs
    assert kwargs["config"] is not cfg.config


def test_pulse_section_and_env_values(tmp_path):
    path = write(tmp_path, """\
        name: r
        pulse:
          username: ${PULSE_USERNAME}
          password: ${PULSE_PASSWORD}
          host: ${PULSE_HOST:-pulse.example.com}
        declare_exchanges: ${DECLARE:-no}
        grace_period: ${GRACE:-2.5}
        bindings:
          - {exchange: QueueEvents.taskGroupResolved, handler: "handlers.py:on_failed"}
        """)
    cfg = load_config(path, environ={"PULSE_USERNAME": "alice", "PULSE_PASSWORD": "pw$1", "GRACE": "7"})
    assert (cfg.pulse_username, cfg.pulse_password, cfg.pulse_host) == ("alice", "pw$1", "pulse.example.com")
    assert cfg.declare_exchanges is False
    assert cfg.grace_period == 7.0


def test_env_expansion_rules(tmp_path):
    path = write(tmp_path, """\
        name: ${NAME}-x
        config:
          both: "${A}/${B:-bee}"
          empty_uses_default: ${EMPTY:-dflt}
          literal: "$$HOME and $plain"
          default_with_colon: ${URL:-http://x:1/}
        bindings:
          - {exchange: QueueEvents.taskFailed, handler: "handlers.py:on_failed"}
        """)
    cfg = load_config(path, environ={"NAME": "n", "A": "a", "EMPTY": ""}, resolve_handlers=False)
    assert cfg.name == "n-x"
    assert cfg.config == {"both": "a/bee", "empty_uses_default": "dflt",
                          "literal": "$HOME and $plain", "default_with_colon": "http://x:1/"}


def test_env_expansion_only_in_values_after_parsing(tmp_path):
    # a value containing YAML syntax stays one string: expansion happens after parsing
    path = write(tmp_path, """\
        name: r
        config:
          text: ${TEXT}
        bindings:
          - {exchange: QueueEvents.taskFailed, handler: "handlers.py:on_failed"}
        """)
    cfg = load_config(path, environ={"TEXT": "a: [b, c]"}, resolve_handlers=False)
    assert cfg.config == {"text": "a: [b, c]"}


# --------------------------------------------------------------------------- mistakes


def _check(err: ConfigError, path, line: int, key: str, *fragments: str) -> None:
    text = str(err)
    assert text.startswith(f"{path}:{line}: {key}: "), text
    assert (err.file, err.line, err.key) == (str(path), line, key)
    for fragment in fragments:
        assert fragment in text, text


def test_unknown_key_suggests_the_closest(tmp_path):
    path = write(tmp_path, GOOD.replace("concurrency: 2", "concurency: 2"))
    _check(error_of(path), path, 10, "concurency", "did you mean 'concurrency'?")
    path = write(tmp_path, GOOD.replace("    maxRetries: 3", "    maxRetires: 3").replace("  maxRetries: 3", "  maxRetires: 3"))
    _check(error_of(path), path, 8, "taskcluster.maxRetires", "did you mean 'maxRetries'?")
    path = write(tmp_path, GOOD.replace("    handler: handlers.py:on_indexed", "    handlr: handlers.py:on_indexed"))
    _check(error_of(path), path, 31, "bindings[1].handlr", "did you mean 'handler'?")


def test_misspelled_exchange_and_field(tmp_path):
    path = write(tmp_path, GOOD.replace("QueueEvents.taskFailed", "QueueEvents.taskFailled"))
    _check(error_of(path), path, 24, "bindings[0].exchange", "did you mean 'QueueEvents.taskFailed'?")
    path = write(tmp_path, GOOD.replace("QueueEvents.taskFailed", "QueueEvent.taskFailed"))
    _check(error_of(path), path, 24, "bindings[0].exchange", "did you mean 'QueueEvents.taskFailed'?")
    path = write(tmp_path, GOOD.replace("provisionerId: proj-example", "provisionerID: proj-example"))
    _check(error_of(path), path, 26, "bindings[0].fields.provisionerID", "did you mean 'provisionerId'?")
    path = write(tmp_path, GOOD.replace("provisionerId: proj-example", "provisionerId: proj.example"))
    _check(error_of(path), path, 26, "bindings[0].fields.provisionerId", "contains '.'")
    path = write(tmp_path, GOOD.replace("QueueEvents.taskFailed", "taskFailed"))
    _check(error_of(path), path, 24, "bindings[0].exchange", "QueueEvents.taskFailed")


def test_handler_that_does_not_import(tmp_path):
    path = write(tmp_path, GOOD, handlers="import no_such_module_xyz\n", name="a.yaml")
    err = error_of(path)
    _check(err, path, 28, "bindings[0].handler", "cannot be imported",
           "No module named 'no_such_module_xyz'")
    path = write(tmp_path, GOOD.replace("handlers.py:on_failed", "handlers.py:on_faild"), name="b.yaml")
    _check(error_of(path), path, 28, "bindings[0].handler", "did you mean 'on_failed'?")
    stem = f"reactions_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{stem}.py").write_text(HANDLERS)
    path = write(tmp_path, GOOD.replace("handlers.py:on_failed", f"{stem}:on_failed"), name="c.yaml")
    _check(error_of(path), path, 28, "bindings[0].handler", f"No module named '{stem}'",
           f"'{stem}.py:on_failed'")
    path = write(tmp_path, GOOD.replace("handlers.py:on_failed", "missing.py:on_failed"), name="d.yaml")
    _check(error_of(path), path, 28, "bindings[0].handler", "no such file")
    path = write(tmp_path, GOOD.replace("handlers.py:on_failed", "handlers.py:calls"), name="e.yaml")
    _check(error_of(path), path, 28, "bindings[0].handler", "not a function")


def test_broken_handler_module_one_line(tmp_path):
    path = write(tmp_path, GOOD, handlers="def on_failed(:\n", name="f.yaml")
    err = error_of(path)
    _check(err, path, 28, "bindings[0].handler", "SyntaxError")


def test_wrong_types(tmp_path):
    path = write(tmp_path, GOOD.replace("concurrency: 2", "concurrency: two"))
    _check(error_of(path), path, 10, "concurrency", "expected an integer, found a string")
    path = write(tmp_path, GOOD.replace("concurrency: 2", "concurrency: -1"))
    _check(error_of(path), path, 10, "concurrency", "expected a value >= 0")
    path = write(tmp_path, GOOD.replace("declare_exchanges: true", "declare_exchanges: 1"))
    _check(error_of(path), path, 13, "declare_exchanges", "expected true or false")
    path = write(tmp_path, GOOD.replace("overflow: reject-publish", "overflow: reject-publsh"))
    _check(error_of(path), path, 12, "overflow", "did you mean 'reject-publish'?")
    path = write(tmp_path, GOOD.replace("  level: debug", "  level: loud"))
    _check(error_of(path), path, 18, "logging.level", "expected one of")
    path = write(tmp_path, GOOD.replace("retry:\n  max_attempts: 3\n  delay: 0.5\n", "retry: 3\n"))
    _check(error_of(path), path, 14, "retry", "expected a mapping")
    path = write(tmp_path, GOOD.replace("      runId: 0", "      runId: [0]"))
    _check(error_of(path), path, 27, "bindings[0].fields.runId", "expected a string or an integer")
    path = write(tmp_path, GOOD.replace("    route: index.project.example.#",
                                        "    route: index.project.example.#\n    fields: {taskId: x}"))
    _check(error_of(path), path, 30, "bindings[1].route", "either fields or route")


def test_missing_pieces(tmp_path):
    path = write(tmp_path, "bindings: []\n")
    _check(error_of(path), path, 1, "name", "missing")
    path = write(tmp_path, "name: x\n")
    _check(error_of(path), path, 1, "bindings", "missing")
    path = write(tmp_path, "name: x\nbindings:\n  - exchange: QueueEvents.taskFailed\n")
    _check(error_of(path), path, 3, "bindings[0].handler", "missing")
    path = write(tmp_path, "")
    assert "empty" in str(error_of(path))


def test_duplicate_key_and_bad_yaml(tmp_path):
    path = write(tmp_path, GOOD.replace("concurrency: 2", "concurrency: 2\nprefetch: 3"))
    err = error_of(path)
    assert str(err).startswith(f"{path}:11: ")
    assert "appears twice" in str(err)
    path = write(tmp_path, "name: [x\n")
    assert str(error_of(path)).startswith(f"{path}:")
    path = write(tmp_path, "name: !!python/object:os.system x\n")  # safe_load rules only
    assert "not valid YAML" in str(error_of(path))
    path = write(tmp_path, "name: x\ncreds: {token: ${T}}\n")
    assert "quote" in str(error_of(path))
    assert "cannot be read" in str(error_of(tmp_path / "nope.yaml"))


def test_env_errors_and_secrets_never_echoed(tmp_path):
    path = write(tmp_path, GOOD)
    err = error_of(path, environ={})
    _check(err, path, 7, "taskcluster.credentials.accessToken", "TC_TOKEN is not set")
    path = write(tmp_path, GOOD.replace("concurrency: 2", "concurrency: ${CONC}"))
    err = error_of(path, environ={"TC_TOKEN": "s3cr3t-token", "CONC": "hunter2"})
    _check(err, path, 10, "concurrency", "'${CONC}'")
    assert "hunter2" not in str(err)
    path = write(tmp_path, GOOD.replace("overflow: reject-publish", "overflow: ${OVER}"))
    err = error_of(path, environ={"TC_TOKEN": "s3cr3t-token", "OVER": "hunter2"})
    assert "hunter2" not in str(err)
    assert "'${OVER}'" in str(err)
    path = write(tmp_path, GOOD.replace("    accessToken: ${TC_TOKEN}", "    accessToken: 12345"))
    err = error_of(path)
    _check(err, path, 7, "taskcluster.credentials.accessToken", "expected a string, found an integer")
    assert "12345" not in str(err)
    path = write(tmp_path, GOOD.replace("name: ci-reactor", "name: ${X"))
    assert "bad environment reference" in str(error_of(path))


def test_import_object():
    assert import_object("os.path:join").__name__ == "join"
    assert import_object("os.path").__name__ == "posixpath"
    with pytest.raises(ConfigError, match="No module named"):
        import_object("no_such_mod_abc:f")
    with pytest.raises(ConfigError, match="did you mean 'join'"):
        import_object("os.path:jion")


# --------------------------------------------------------------------------- building


def test_build_listener(tmp_path):
    pytest.importorskip("tclisten.exchanges")
    path = write(tmp_path, GOOD)
    cfg = load_config(path, environ={"TC_TOKEN": "s3cr3t-token"})
    app = build_listener(cfg)
    assert app.queue_name == "queue/guest/ci-reactor"
    assert [(b.exchange, b.pattern) for b in app.bindings] == [
        ("exchange/taskcluster-queue/v1/task-failed", "primary.*.0.*.*.proj-example.*.*.*.#"),
        ("exchange/taskcluster-queue/v1/task-completed", "route.index.project.example.#"),
    ]
    assert [b.handler for b in app.bindings][1] == "indexed"
    assert app.config["channel"] == "#ci"
    # the same file built twice reuses the imported handler module
    assert build_listener(load_config(path, environ={"TC_TOKEN": "t"})).bindings == app.bindings


def test_build_listener_names_the_line(tmp_path):
    pytest.importorskip("tclisten.exchanges")
    path = write(tmp_path, GOOD.replace("concurrency: 2", "concurrency: 500"))
    with pytest.raises(ConfigError) as info:
        build_listener(load_config(path, environ={"TC_TOKEN": "t"}))
    assert str(info.value).startswith(f"{path}:9: prefetch: ")  # prefetch (100) < concurrency
    name = f"x{uuid.uuid4().hex[:6]}"
    path = write(tmp_path, GOOD.replace("provisionerId: proj-example", f"provisionerId: {'p' * 39}")
                 .replace("ci-reactor", name))
    with pytest.raises(ConfigError) as info:
        build_listener(load_config(path, environ={"TC_TOKEN": "t"}))
    assert str(info.value).startswith(f"{path}:24: bindings[0]: ")


def test_docstring_examples():
    import doctest

    import tclisten.config as config

    result = doctest.testmod(config)
    assert result.failed == 0
    assert result.attempted > 0


def test_module_docstring_example_is_a_valid_file(tmp_path):
    import tclisten.config as config

    block = config.__doc__.split(".. code-block:: yaml\n\n", 1)[1].split("\n\n", 1)[0]
    path = tmp_path / "doc.yaml"
    path.write_text(textwrap.dedent(block))
    cfg = load_config(path, resolve_handlers=False, environ={
        "PULSE_USERNAME": "u", "PULSE_PASSWORD": "p", "TASKCLUSTER_CLIENT_ID": "c",
        "TASKCLUSTER_ACCESS_TOKEN": "t"})
    assert cfg.name == "ci-reactor"
    assert len(cfg.bindings) == 3
    assert cfg.taskcluster["rootUrl"] == "https://tc.example.com"


def test_health_port_reaches_the_listener(tmp_path):
    from tclisten.config import build_listener, load_config

    path = tmp_path / "listener.yaml"
    path.write_text("name: healthy\nbroker_url: amqp://guest:guest@127.0.0.1:5672//\nhealth_port: 9464\n"
                    "bindings:\n  - exchange: QueueEvents.taskFailed\n    handler: json:dump\n")
    assert build_listener(load_config(path)).health_port == 9464


# --------------------------------------------------------------------------- one declaration of options


def test_every_option_is_a_field_and_a_key(tmp_path):
    """The loader reads tclisten.options: every declared option has its field and its key."""
    from tclisten.options import OPTIONS

    fields = {f.name for f in dataclasses.fields(ListenerConfig)}
    assert set(OPTIONS) <= fields
    assert "workers" in fields
    path = write(tmp_path, "name: x\nno_such_key: 1\n")
    with pytest.raises(ConfigError, match="unknown key") as info:
        load_config(path)
    keys = set(str(info.value).split("expected one of: ", 1)[1].split(", "))  # the keys a file may have
    assert {name for name in OPTIONS if not name.startswith("pulse_")} <= keys


NEW_KEYS = """\
name: everything
broker_url:
  - amqp://guest:guest@127.0.0.1:5672//
  - amqp://guest:guest@127.0.0.2:5672//
handler_timeout: null
queue_type: quorum
prune_bindings: false
validate: false
health_port: 0
health_host: 0.0.0.0
workers: 3
logging: {level: warning, format: json}
bindings:
  - exchange: exchange/hgpushes/v2
    routing_key: mozilla-central.#
    handler: handlers.py:on_failed
  - exchange: exchange/taskcluster-queue/v1/task-failed
    fields: {provisionerId: proj-example}
    handler: handlers.py:on_failed
    timeout: 5
    retry: {max_attempts: 2, delay: 0.5}
  - exchange: QueueEvents.taskCompleted
    route: index.#
    handler: handlers.py:on_indexed
    timeout: null
"""


def test_validate_true_in_yaml_checks_the_bodies_of_every_handler_with_a_schema(tmp_path):
    pytest.importorskip("fastjsonschema")
    cfg = load_config(write(tmp_path, NEW_KEYS.replace("validate: false", "validate: true")), environ={})
    app = build_listener(cfg)
    assert app.validate is True
    assert app.dispatcher.checked_exchanges == ("exchange/taskcluster-queue/v1/task-completed",
                                                "exchange/taskcluster-queue/v1/task-failed")


def test_new_keys(tmp_path):
    cfg = load_config(write(tmp_path, NEW_KEYS), environ={})
    assert cfg.broker_url == ("amqp://guest:guest@127.0.0.1:5672//", "amqp://guest:guest@127.0.0.2:5672//")
    assert cfg.handler_timeout is None
    assert "handler_timeout" in cfg.given
    assert (cfg.queue_type, cfg.prune_bindings, cfg.validate) == ("quorum", False, False)
    assert (cfg.health_port, cfg.health_host, cfg.workers) == (0, "0.0.0.0", 3)
    assert (cfg.log_level, cfg.log_format) == ("WARNING", "json")
    kwargs = cfg.listener_kwargs()
    assert kwargs["handler_timeout"] is None
    assert "workers" not in kwargs
    raw, full, routed = cfg.bindings
    assert raw.routing_key == "mozilla-central.#"
    assert raw.exchange == "exchange/hgpushes/v2"
    assert (full.timeout, full.timeout_given, full.retry) == (5, True, {"max_attempts": 2, "delay": 0.5})
    assert (routed.timeout, routed.timeout_given) == (None, True)
    app = build_listener(cfg)
    assert app.handler_timeout is None
    assert app.queue_type == "quorum"
    assert app.validate is False
    assert app.address.urls == cfg.broker_url
    assert [(b.exchange, b.pattern) for b in app.bindings] == [
        ("exchange/hgpushes/v2", "mozilla-central.#"),
        ("exchange/taskcluster-queue/v1/task-failed", "primary.*.*.*.*.proj-example.*.*.*.#"),
        ("exchange/taskcluster-queue/v1/task-completed", "route.index.#")]
    on_failed = next(h for h in app.handlers if h.name.endswith("on_failed"))
    assert on_failed.timeout == 5
    assert on_failed.retry.max_attempts == 2
    assert on_failed.retry.delay == 0.5
    on_indexed = next(h for h in app.handlers if h.name.endswith("on_indexed"))
    assert on_indexed.timeout is None
    assert on_indexed.timeout_set
    # left out, handler_timeout is the Listener's default
    plain_cfg = load_config(write(tmp_path, GOOD), environ={"TC_TOKEN": "t"})
    assert "handler_timeout" not in plain_cfg.listener_kwargs()
    assert build_listener(plain_cfg).handler_timeout == 1500.0


def test_new_keys_mistakes(tmp_path):
    def bad(old: str, new: str):
        path = write(tmp_path, NEW_KEYS.replace(old, new))
        return path, error_of(path, environ={"HT": "lots"})

    path, err = bad("queue_type: quorum", "queue_type: quorom")
    _check(err, path, 6, "queue_type", "did you mean 'quorum'?")
    path, err = bad("workers: 3", "workers: 0")
    _check(err, path, 11, "workers", "expected a value >= 1")
    path, err = bad("handler_timeout: null", "handler_timeout: ${HT}")
    _check(err, path, 5, "handler_timeout", "'${HT}' does not give one")
    assert "lots" not in str(err)
    path, err = bad("format: json", "format: xml")
    _check(err, path, 12, "logging.format", "expected one of: text, json")
    path, err = bad("  - amqp://guest:guest@127.0.0.2:5672//", "  - amqp://other:pw@127.0.0.2:5672//")
    _check(err, path, 2, "broker_url", "different users")
    assert "pw@" not in str(err)
    path, err = bad("broker_url:\n  - amqp://guest:guest@127.0.0.1:5672//\n  - amqp://guest:guest@127.0.0.2:5672//",
                    "broker_url: 5")
    _check(err, path, 2, "broker_url", "expected a URL or a list of URLs, found an integer")
    path, err = bad("    routing_key: mozilla-central.#", "    fields: {tree: mozilla-central}")
    _check(err, path, 15, "bindings[0].fields", "no bundled reference", "routing_key")
    path, err = bad("    timeout: 5", "    timeout: 0")
    _check(err, path, 20, "bindings[1].timeout", "expected a value >= 0.001")
    path, err = bad("    retry: {max_attempts: 2, delay: 0.5}", "    retry: {max_attempts: 0}")
    _check(err, path, 21, "bindings[1].retry.max_attempts", "max_attempts must be an integer >= 1")
    path, err = bad("    retry: {max_attempts: 2, delay: 0.5}", "    retry: {max_atempts: 2}")
    _check(err, path, 21, "bindings[1].retry.max_atempts", "did you mean 'max_attempts'?")
    path, err = bad("    route: index.#", "    route: index.#\n    routing_key: a.#")
    _check(err, path, 24, "bindings[2].routing_key", "either route or routing_key")
    path, err = bad("exchange/taskcluster-queue/v1/task-failed", "exchange-taskcluster-queue/v1/task-failed")
    _check(err, path, 17, "bindings[1].exchange", "unknown exchange")


def test_lenient_loading_skips_what_only_handlers_read(tmp_path):
    path = write(tmp_path, GOOD.replace("rootUrl: https://tc.example.com", "rootUrl: ${TASKCLUSTER_ROOT_URL}")
                 .replace('channel: "#ci"', "channel: ${CHANNEL}"))
    err = error_of(path, environ={})
    _check(err, path, 4, "taskcluster.rootUrl", "TASKCLUSTER_ROOT_URL is not set")
    cfg = load_config(path, environ={}, lenient=True)
    assert cfg.taskcluster == {"maxRetries": 3, "credentials": {"clientId": "project/ci"}}
    assert "channel" not in cfg.config
    assert cfg.config["price"] == "$5"
    # everything else stays strict: the name, the broker and the bindings are needed to inspect
    path = write(tmp_path, GOOD.replace("name: ci-reactor", "name: ${LISTENER}"))
    _check(error_of(path, environ={}, lenient=True), path, 1, "name", "LISTENER is not set")


def test_build_listener_overrides(tmp_path):
    path = write(tmp_path, GOOD)
    cfg = load_config(path, environ={"TC_TOKEN": "t"})
    app = build_listener(cfg, overrides={"prefetch": 7, "handler_timeout": None, "queue_type": "quorum"})
    assert (app.prefetch, app.concurrency, app.handler_timeout, app.queue_type) == (7, 2, None, "quorum")
    with pytest.raises(ConfigError) as info:
        build_listener(cfg, overrides={"concurrency": 500})
    assert "--concurrency" in str(info.value)
    assert f"{path}:" not in str(info.value)
    with pytest.raises(ConfigError, match="quorum"):  # the file's overflow does not fit a quorum queue
        build_listener(load_config(write(tmp_path, GOOD.replace("reject-publish", "reject-publish-dlx")),
                                   environ={"TC_TOKEN": "t"}), overrides={"queue_type": "quorum"})


def test_yamlfile_docstring_examples():
    import doctest

    import tclisten.yamlfile as yamlfile

    result = doctest.testmod(yamlfile)
    assert result.failed == 0
    assert result.attempted > 0
