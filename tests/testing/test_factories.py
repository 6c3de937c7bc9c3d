"""Every message factory produces what Taskcluster publishes: schema-valid bodies (checked
against the deployment's own JSON schemas), publisher-shaped routing keys, CC headers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tclisten.testing.factories import (
    FactoryMessage, build_routing_key, factory_for, factory_names, message_for, slug,
)
from tclisten.taskcluster.references import ExchangesReference, bundled

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "messages"
REALWORLD = Path(__file__).resolve().parents[3] / "shared" / "realworld"
SLUG_PATTERN = r"^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$"


@pytest.fixture(scope="module")
def validate(shared_references):
    """validate(schema_url, body) against the deployment's schemas, $refs resolved locally."""
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    from referencing.jsonschema import DRAFT6

    root = shared_references / "tc-example-deployment" / "schemas"
    resources = []
    for path in root.rglob("*.json"):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "$id" in data:
            resources.append((data["$id"].rstrip("#"), DRAFT6.create_resource(data)))
    registry = referencing.Registry().with_resources(resources)

    def check(schema_url: str, body: dict) -> None:
        schema = registry.contents(schema_url.rstrip("#"))
        validator = jsonschema.Draft6Validator(
            schema, registry=registry, format_checker=jsonschema.Draft6Validator.FORMAT_CHECKER)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)

    return check


def _schema_url(name: str) -> str | None:
    cls, _, entry = name.partition(".")
    ref = bundled()[cls]
    schema = ref.exchange(entry).schema
    if schema is None or schema.startswith("http"):
        return None  # 2015 services: their schemas were never published in this layout
    return f"https://tc.example.com/schemas/{ref.service_name}/{schema}"


def test_every_bundled_exchange_has_a_factory():
    exchanges = {f"{cls}.{ex.name}" for cls, ref in bundled().items()
                 if isinstance(ref, ExchangesReference) for ex in ref.exchanges}
    assert set(factory_names()) == exchanges


@pytest.mark.parametrize("name", factory_names())
def test_factory_body_is_schema_valid(name, validate):
    message = message_for(name)
    url = _schema_url(name)
    if url is None:
        pytest.skip(f"{name} has no published schema")
    validate(url, message.body)


@pytest.mark.parametrize("name", factory_names())
def test_routing_key_fits_the_exchange(name):
    cls, _, entry = name.partition(".")
    ref = bundled()[cls]
    spec = ref.exchange(entry)
    message = message_for(name, routes=["index.project.a", "notify.x"])
    assert message.exchange == ref.exchange_prefix + spec.exchange
    words = message.routing_key.split(".")
    if not any(w.multiple_words and w.name != "reserved" for w in spec.routing_key):
        assert len(words) == len(spec.routing_key)
    for word, value in zip(spec.routing_key, words):
        if word.constant:
            assert value == word.constant
    assert message.headers == {"CC": ["route.index.project.a", "route.notify.x"]}
    assert message.routing_keys == [message.routing_key, "route.index.project.a", "route.notify.x"]
    json.dumps(message.as_record())  # JSON-serialisable as is


@pytest.mark.parametrize("variant", [
    {"reasonResolved": "worker-shutdown"},
    {"reasonResolved": "internal-error", "runId": 3},
    {"reasonResolved": "deadline-exceeded", "workerGroup": None, "workerId": None},
    {"reasonResolved": "canceled", "runId": 1, "retriesLeft": 4},
])
def test_task_exception_variants_are_valid(variant, validate):
    message = message_for("QueueEvents.taskException", **variant)
    validate(_schema_url("QueueEvents.taskException"), message.body)
    status = message.body["status"]
    run_id = variant.get("runId", 0)
    assert [run["runId"] for run in status["runs"]] == list(range(run_id + 1))
    assert status["runs"][-1]["reasonResolved"] == variant["reasonResolved"]
    words = message.routing_key.split(".")
    assert len(words) == 10
    assert words[2] == str(run_id)
    if variant.get("workerGroup", "x") is None:
        assert words[3:5] == ["_", "_"]
        assert "workerGroup" not in message.body


def test_queue_task_overrides_flow_into_body_and_key(validate):
    message = message_for("QueueEvents.taskFailed", taskId="fN1SbArXTPSVFNUvaOlinQ",
                          taskGroupId="Wt-6mxx-QlCQtBZXj5DNPw", runId=1, provisionerId="proj-x",
                          workerType="linux-large", schedulerId="gecko-level-3",
                          tags={"kind": "build"})
    validate(_schema_url("QueueEvents.taskFailed"), message.body)
    assert message.routing_key == ("primary.fN1SbArXTPSVFNUvaOlinQ.1.us-east-1.i-0123456789abcdef."
                                   "proj-x.linux-large.gecko-level-3.Wt-6mxx-QlCQtBZXj5DNPw._")
    assert message.body["task"] == {"tags": {"kind": "build"}}
    assert message.body["status"]["taskQueueId"] == "proj-x/linux-large"


def test_task_defined_has_no_run():
    message = message_for("QueueEvents.taskDefined")
    assert message.body["status"]["runs"] == []
    assert "runId" not in message.body
    assert message.routing_key.split(".")[2:5] == ["_", "_", "_"]


def test_bad_overrides_are_named():
    with pytest.raises(TypeError, match="did you mean 'taskGroupId'"):
        message_for("QueueEvents.taskFailed", taskGroupID="x")
    with pytest.raises(ValueError, match="did you mean 'QueueEvents.taskFailed'"):
        message_for("QueueEvents.taskFailled")
    with pytest.raises(ValueError, match="cannot contain '.'"):
        message_for("QueueEvents.taskFailed", workerType="a.b")
    with pytest.raises(ValueError, match="longer than 38"):
        message_for("QueueEvents.taskFailed", provisionerId="p" * 39)
    with pytest.raises(TypeError, match="not a string"):
        message_for("QueueEvents.taskFailed", routes="index.x")


def test_full_exchange_name_and_factory_for():
    a = message_for("exchange/taskcluster-queue/v1/task-completed", taskId="fN1SbArXTPSVFNUvaOlinQ")
    assert a.body["status"]["state"] == "completed"
    factory = factory_for("QueueEvents.artifactCreated")
    assert factory.__name__ == "artifactCreated"
    msg = factory(artifactName="public/build/target.zip")
    assert isinstance(msg, FactoryMessage)
    assert msg.body["artifact"]["name"] == "public/build/target.zip"


def test_worker_pool_error_names_the_worker_it_is_about(validate):
    message = message_for("WorkerManagerEvents.workerPoolError", workerPoolId="foobar/baz",
                          providerId="testing1", workerGroup="wg", workerId="wi")
    assert message.routing_key == "primary.testing1.foobar.baz.wg.wi._._"
    assert (message.body["workerGroup"], message.body["workerId"]) == ("wg", "wi")
    validate(_schema_url("WorkerManagerEvents.workerPoolError"), message.body)
    with_config = message_for("WorkerManagerEvents.workerPoolError", launchConfigId="lc-1")
    assert with_config.routing_key == "primary.aws.proj-example.ci._._.lc-1._"
    plain = message_for("WorkerManagerEvents.workerPoolError")
    assert plain.routing_key == "primary.aws.proj-example.ci._._._._"
    assert not {"workerGroup", "workerId", "launchConfigId"} & set(plain.body)


def test_worker_manager_messages_carry_only_their_schema_s_fields(validate):
    worker = message_for("WorkerManagerEvents.workerRunning", launchConfigId="lc-1")
    assert worker.routing_key == "primary.aws.proj-example.ci.us-east-1.i-0123456789abcdef.lc-1._"
    validate(_schema_url("WorkerManagerEvents.workerRunning"), worker.body)
    pool = message_for("WorkerManagerEvents.workerPoolUpdated", previousProviderId="gcp")
    assert pool.body["previousProviderId"] == "gcp"
    validate(_schema_url("WorkerManagerEvents.workerPoolUpdated"), pool.body)
    for name, override in (("workerPoolCreated", {"workerGroup": "wg"}),
                           ("launchConfigCreated", {"workerId": "wi"}),
                           ("workerRequested", {"previousProviderId": "gcp"})):
        with pytest.raises(ValueError, match=f"{name} messages carry no"):
            message_for(f"WorkerManagerEvents.{name}", **override)


def test_github_tasks_for_is_what_the_service_sends():
    assert message_for("GithubEvents.rerun").body["tasks_for"] == "github-push"
    rerun = message_for("GithubEvents.rerun", tasks_for="github-pull-request")
    assert rerun.body["tasks_for"] == "github-pull-request"
    assert message_for("GithubEvents.pullRequest").body["tasks_for"] == "github-pull-request"


def test_routing_key_builder_rules():
    ex = bundled()["NotifyEvents"].exchange("notify")
    assert build_routing_key(ex, {"topic": "a.b.c"}) == "primary.a.b.c"
    with pytest.raises(ValueError, match="needs a value"):
        build_routing_key(ex, {})


def test_slug_shape():
    import re
    for _ in range(200):
        assert re.match(SLUG_PATTERN, slug())


def test_example_messages_are_valid(validate):
    files = sorted(EXAMPLES.glob("*.json"))
    assert files, "examples/messages is empty"
    by_exchange = {}
    for name in factory_names():
        by_exchange[message_for(name).exchange] = name
    for path in files:
        record = json.loads(path.read_text())
        assert set(record) == {"exchange", "routing_key", "body", "headers"}, path
        name = by_exchange[record["exchange"]]
        validate(_schema_url(name), record["body"])


def test_example_messages_are_regenerated_exactly(tmp_path):
    import runpy

    generate = runpy.run_path(str(EXAMPLES / "generate.py"))["generate"]
    written = generate(tmp_path)
    assert {p.name for p in written} == {p.name for p in EXAMPLES.glob("*.json*")}
    for path in written:
        assert (EXAMPLES / path.name).read_text() == path.read_text(), path.name


def test_topic_objects_are_accepted():
    exchanges = pytest.importorskip("tclisten.exchanges")
    message = message_for(exchanges.QueueEvents.taskFailed, runId=2)
    assert message.exchange == exchanges.QueueEvents.taskFailed.exchange
    fields = exchanges.QueueEvents.taskFailed.parse(message.routing_key)
    assert fields["runId"] == "2"
    assert fields["taskId"] == message.body["status"]["taskId"]
    assert factory_for(exchanges.QueueEvents.taskGroupResolved)().body["version"] == 1


def test_docstring_examples():
    import doctest

    import tclisten.testing.factories as factories

    result = doctest.testmod(factories)
    assert result.failed == 0
    assert result.attempted > 0


# --------------------------------------------------------------------------- real messages

# Fields the queue added to its messages after the 2019 production messages were captured.
ADDED_SINCE_2019 = {"task", "taskQueueId", "projectId"}


@pytest.fixture(scope="module")
def real_messages() -> list[dict]:
    path = REALWORLD / "pulse_messages.json"
    if not path.is_file():
        pytest.skip(f"{path} is not here (the shared real-world material)")
    return json.loads(path.read_text(encoding="utf-8"))["messages"]


def _exchange_name(exchange: str) -> str:
    for name in factory_names():
        cls, _, entry = name.partition(".")
        ref = bundled()[cls]
        if ref.exchange_prefix + ref.exchange(entry).exchange == exchange:
            return name
    raise AssertionError(f"no bundled exchange {exchange}")


def _key_fields(name: str, routing_key: str) -> dict:
    """The values a real routing key carries, by routing-key word ("_" meaning none)."""
    cls, _, entry = name.partition(".")
    spec = bundled()[cls].exchange(entry).routing_key
    words = routing_key.split(".")
    assert not any(w.multiple_words for w in spec[:-1]), "only a last word may span several"
    values = words[:len(spec) - 1] + [".".join(words[len(spec) - 1:])]
    return {w.name: (None if value == "_" else value) for w, value in zip(spec, values) if not w.constant}


def _overrides(name: str, fields: dict) -> dict:
    """Factory keywords for the values of a real routing key."""
    values = {k: v for k, v in fields.items() if k != "reserved"}
    if values.get("runId") is not None:
        values["runId"] = int(values["runId"])
    if name.startswith("WorkerManagerEvents."):
        values["workerPoolId"] = f"{values.pop('provisionerId')}/{values.pop('workerType')}"
    return values


def _key_problems(real: dict, ours: dict, complete: bool, newer: set, where: str) -> list[str]:
    """What the factory's body lacks of a real body's keys (or, for a complete real body,
    has beyond it and beyond ``newer``), at the top, in ``status`` and in the last run."""
    problems = []
    missing, extra = set(real) - set(ours), set(ours) - set(real) - newer
    if missing:
        problems.append(f"{where}: factory lacks {sorted(missing)}")
    if complete and extra:
        problems.append(f"{where}: factory adds {sorted(extra)}")
    for key in ("status",):
        if isinstance(real.get(key), dict) and isinstance(ours.get(key), dict):
            problems += _key_problems(real[key], ours[key], complete, newer, f"{where}.{key}")
    if real.get("runs") and ours.get("runs"):
        problems += _key_problems(real["runs"][-1], ours["runs"][-1], complete, newer, f"{where}.runs[-1]")
    return problems


def _compare(real: dict, validate) -> list[str]:
    name = _exchange_name(real["exchange"])
    overrides = _overrides(name, _key_fields(name, real["routing_key"]))
    routes = real.get("task_routes", [cc[len("route."):] for cc in real["cc"]])
    message = message_for(name, **overrides, routes=routes)
    where = f"{real['id']} ({name})"
    problems = []
    if message.routing_key != real["routing_key"]:
        problems.append(f"{where}: key {message.routing_key} instead of {real['routing_key']}")
    if message.headers["CC"] != real["cc"]:
        problems.append(f"{where}: CC {message.headers['CC']} instead of {real['cc']}")
    body = real.get("body")
    if body:
        newer = ADDED_SINCE_2019 if real["source"] == "treeherder-queue-messages" else set()
        problems += _key_problems(body, message.body, real.get("body_complete", False), newer, where)
        for key in {"version", "tasks_for", *overrides} & set(body):  # what the factory derives
            if message.body.get(key) != body[key]:
                problems.append(f"{where}: {key} is {message.body.get(key)!r}, the service sent {body[key]!r}")
    url = _schema_url(name)
    if url is not None:
        validate(url, message.body)
    return problems


def test_factories_build_what_the_services_published(real_messages, validate):
    """For each real message: the factory message of its exchange, given the values of its
    routing key and the task's routes, has the same routing key and CC keys, every key of
    the real body (and, where the real body is complete, no other but the fields added
    since), the values the service derives, and a body valid against today's schema."""
    assert len(real_messages) > 100
    problems = [problem for real in real_messages for problem in _compare(real, validate)]
    assert not problems, "\n".join(problems)
    covered = {_exchange_name(real["exchange"]) for real in real_messages}
    assert {"QueueEvents.taskPending", "GithubEvents.rerun", "WorkerManagerEvents.workerPoolError"} <= covered
