"""References: the bundle, the loaders, and errors that name the file and the entry."""

from __future__ import annotations

import copy
import http.server
import json
import threading
from functools import partial
from pathlib import Path

import pytest

from tclisten.taskcluster import references, schemas
from tclisten.exceptions import ReferenceFormatError

CURRENT = ["Auth", "AuthEvents", "Github", "GithubEvents", "Hooks", "HooksEvents", "Index", "Notify",
           "NotifyEvents", "Object", "PurgeCache", "Queue", "QueueEvents", "Secrets", "WebServer",
           "WorkerManager", "WorkerManagerEvents"]


def test_bundle_has_every_current_service_and_the_2015_ones():
    refs = references.bundled()
    assert sorted(refs) == sorted(CURRENT + ["Scheduler", "SchedulerEvents"])
    assert refs["Scheduler"].base_url == "https://scheduler.taskcluster.net/v1"
    assert refs["SchedulerEvents"].exchange_prefix == "exchange/taskcluster-scheduler/v1/"
    task = refs["Queue"].function("task")
    assert (task.method, task.route, task.args) == ("get", "/task/<taskId>", ("taskId",))


def test_bundle_keeps_only_facts():
    for path in references.bundled_dir().glob("*/*/*.json"):
        text = path.read_text()
        assert '"description"' not in text, path
        assert '"title"' not in text, path
        assert '"summary"' not in text, path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _prose(node, where="") -> list[str]:
    """Where a schema keeps prose: a prose keyword with text (a property named ``title``
    maps to a schema, not to text)."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in schemas.PROSE and isinstance(value, (str, list)):
                found.append(f"{where}/{key}")
            found += _prose(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found += _prose(item, f"{where}/{index}")
    return found


def test_bundled_schemas_keep_no_prose_and_every_ref_stays_in_the_bundle():
    folder = schemas.bundled_schemas_dir()
    files = sorted(folder.rglob("*.json"))
    assert len(files) >= 30
    for path in files:
        data = json.loads(path.read_text())
        assert _prose(data) == [], path
        assert data["$schema"] == schemas.DRAFT6 and "$id" not in data, path
    rel = [p.relative_to(folder).as_posix() for p in files]
    assert schemas.collect(lambda p: json.loads((folder / p).read_text()), rel).keys() == set(rel)


def test_strip_prose_keeps_properties_named_like_prose_keywords():
    schema = {"type": "object", "description": "x", "properties": {
        "title": {"type": "string", "title": "t"}, "examples": {"items": [{"description": "d"}]}},
        "definitions": {"a": {"anyOf": [{"$comment": "c", "type": "null"}]}}}
    assert schemas.strip_prose(schema) == {"type": "object", "properties": {
        "title": {"type": "string"}, "examples": {"items": [{}]}}, "definitions": {"a": {"anyOf": [{"type": "null"}]}}}


def test_a_ref_out_of_the_deployment_is_an_error_naming_the_schema():
    files = {"svc/v1/a.json": {"$ref": "https://elsewhere.example/b.json#"}}
    with pytest.raises(ReferenceFormatError, match="schema svc/v1/a.json: \\$ref 'https://elsewhere.example/b.json#' "
                                                   "leaves the deployment's schemas"):
        schemas.collect(files.__getitem__, ["svc/v1/a.json"])


def test_schemas_are_read_from_a_deployment_over_http(shared_references):
    root = shared_references / "tc-example-deployment"
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        read = schemas.reader_for(f"http://127.0.0.1:{server.server_port}")
        found = schemas.collect(read, ["queue/v1/task-failed-message.json"])
        with pytest.raises(ReferenceFormatError, match="cannot fetch schema"):
            read("queue/v1/missing.json")
    finally:
        server.shutdown()
        server.server_close()
    bundled = schemas.bundled_schemas_dir()
    assert found == {p: json.loads((bundled / p).read_text()) for p in found}
    assert "queue/v1/task.json" in found


def test_queue_exchanges_know_the_sizes_the_queue_enforces():
    words = {w.name: w.max_size for w in references.bundled()["QueueEvents"].exchange("taskFailed").routing_key}
    assert words["taskId"] == 22
    assert words["workerType"] == 38
    assert words["reserved"] is None


def test_bundle_matches_import_of_shared_references(shared_references, tmp_path):
    references.import_references([shared_references / "tc-example-deployment",
                                  shared_references / "seed-2015" / "apis.json"], tmp_path)
    fresh = references.load(tmp_path)
    assert fresh == references.bundled()
    bundled = schemas.bundled_schemas_dir()
    written = {p.relative_to(tmp_path / "schemas"): p.read_text() for p in (tmp_path / "schemas").rglob("*.json")}
    assert written == {p.relative_to(bundled): p.read_text() for p in bundled.rglob("*.json")}


def test_load_deployment_layout_and_2015_bundle(shared_references):
    deployment = references.load(shared_references / "tc-example-deployment")
    assert sorted(deployment) == sorted(CURRENT)
    seed = references.load(shared_references / "seed-2015" / "apis.json")
    assert sorted(seed) == ["Auth", "Index", "Queue", "QueueEvents", "Scheduler", "SchedulerEvents"]
    assert seed["Queue"].base_url == "https://queue.taskcluster.net/v1"


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "api.json"
    path.write_text(json.dumps(data))
    return path


GOOD = {"serviceName": "demo", "apiVersion": "v1", "entries": [
    {"type": "function", "name": "thing", "method": "get", "route": "/thing/<id>", "args": ["id"],
     "query": []}]}


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["entries"][0].pop("route"), "entry #0 'thing': missing 'route'"),
    (lambda d: d["entries"][0].update(method="fetch"), "entry #0 'thing': unknown HTTP method 'fetch'"),
    (lambda d: d["entries"][0].update(args=["other"]), "do not match the parameters of route"),
    (lambda d: d["entries"].append(dict(d["entries"][0])), "entry #1 'thing': name 'thing' is defined twice"),
    (lambda d: d["entries"][0].update(type="exchange"), "type 'exchange' where 'function'"),
    (lambda d: d.pop("serviceName"), "missing 'serviceName'"),
    (lambda d: d["entries"][0].update(query="limit"), "'query' must be list"),
])
def test_malformed_reference_names_file_and_entry(tmp_path, mutate, expected):
    data = copy.deepcopy(GOOD)
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(ReferenceFormatError) as info:
        references.load(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_malformed_exchange_entry(tmp_path):
    data = {"serviceName": "demo", "apiVersion": "v1", "exchangePrefix": "exchange/demo/v1/", "entries": [
        {"type": "topic-exchange", "name": "happened", "exchange": "happened",
         "routingKey": [{"name": "id", "required": "yes", "multipleWords": False}]}]}
    with pytest.raises(ReferenceFormatError, match=r"entry #0 'happened' routingKey #0: 'required' must be bool"):
        references.load(_write(tmp_path, data))


def test_not_json(tmp_path):
    path = tmp_path / "api.json"
    path.write_text("{nope")
    with pytest.raises(ReferenceFormatError, match="not valid JSON"):
        references.load(path)


def test_live_deployment_is_fetched_and_cached(tmp_path, monkeypatch):
    """Serve the bundle as a deployment would and load it by rootUrl, then offline from cache."""
    site = tmp_path / "site"
    (site / "references").mkdir(parents=True)
    bundle = references.bundled_dir()
    manifest = json.loads((bundle / "manifest.json").read_text())
    for rel in manifest["references"]:
        (site / "references" / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / "references" / rel).write_text((bundle / rel).read_text())
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{server.server_port}"
    (site / "references" / "manifest.json").write_text(json.dumps(
        {"references": [f"{root}/references/{rel}" for rel in manifest["references"]]}))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    try:
        live = references.load(root)
    finally:
        server.shutdown()
        server.server_close()
    assert live == references.bundled()
    # the server is gone: a stale cache is still used
    assert references.load(root, max_age=0) == references.bundled()


def test_unreachable_deployment_without_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(ReferenceFormatError, match="cannot fetch references"):
        references.load("http://127.0.0.1:9", timeout=2)
