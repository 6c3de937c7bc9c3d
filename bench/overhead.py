"""Benchmark 4: tclisten's per-message cost with 100 bindings on one queue, no broker.

A listener gets 100 bindings on the bench's task-completed exchange (40 ``taskGroupId=``,
30 ``route="index.project.<name>.#"``, 20 ``provisionerId=, workerType=``, 10
``schedulerId=``), each for its own trivial handler.  Every message is made to match one
binding (the broker would not deliver it otherwise) and carries 1 or 2 CC routes.  Timed, per
message, in a hot loop:

- ``Listener.dispatch`` with the body already decoded: matching + ``Message`` + handler call
  (the target: under 10 µs);
- ``Listener.dispatch`` with the raw JSON body (adds ``json.loads`` of ~680 bytes);
- the matcher alone (``Dispatcher.match`` over the primary key and the CC keys);
- for comparison, what a hand-written listener does: one compiled regex per binding tried
  against every key;
- for calibration, ``json.loads`` of the body alone (~7 µs on a quiet machine of this kind,
  see PERFORMANCE.md): on a loaded shared machine every figure here inflates alike.

Times are CPU time of this process (``time.process_time``), so that other work on a shared
machine inflates them less than it would wall-clock times.

>>> msgs = messages(6)
>>> len(msgs), msgs[0][0].startswith("primary.")
(6, True)
"""

from __future__ import annotations

import json
import random
import re
import time
from typing import Any

from bench import common

BINDINGS = 100
_GROUPS, _ROUTES, _POOLS, _SCHEDULERS = 40, 30, 20, 10


def _rng() -> random.Random:
    return random.Random(4)


def binding_specs() -> list[dict[str, str]]:
    """The 100 bindings, as keyword arguments of ``Listener.on``."""
    rng = _rng()
    specs: list[dict[str, str]] = []
    specs += [{"taskGroupId": common.slug(rng)} for _ in range(_GROUPS)]
    specs += [{"route": f"index.project.name-{i}.#"} for i in range(_ROUTES)]
    specs += [{"provisionerId": f"prov-{i % 5}", "workerType": f"wt-{i}"} for i in range(_POOLS)]
    specs += [{"schedulerId": f"sched-{i}"} for i in range(_SCHEDULERS)]
    return specs


def messages(count: int, seed: int = 9) -> list[tuple[str, bytes, dict, dict]]:
    """``count`` (routing_key, raw body, decoded body, headers), each matching one binding."""
    rng = random.Random(seed)
    specs = binding_specs()
    base = common.make_messages(min(count, 3000), seed=seed)
    out = []
    for i in range(count):
        spec = specs[rng.randrange(len(specs))]
        task_id = common.slug(rng)
        words = {"taskId": task_id, "runId": "0", "workerGroup": "us-east-1", "workerId": f"i-{i:010x}",
                 "provisionerId": "proj-x", "workerType": "t-linux", "schedulerId": "level-3",
                 "taskGroupId": common.slug(rng)}
        routes = [f"route.tc-treeherder.v2.proj.{task_id}"]
        if "route" in spec:
            routes.insert(0, "route." + spec["route"].replace("#", task_id))
        else:
            words.update(spec)
            if rng.random() < 0.6:
                routes.append(f"route.notify.email.{task_id}.on-failed")
        key = ".".join(["primary", words["taskId"], words["runId"], words["workerGroup"], words["workerId"],
                        words["provisionerId"], words["workerType"], words["schedulerId"],
                        words["taskGroupId"], "_"])
        raw = base[i % len(base)].body
        out.append((key, raw, json.loads(raw), {"CC": routes}))
    return out


def build_listener(handled: list) -> Any:
    """A Listener with the 100 bindings, each on its own handler appending to ``handled``."""
    from bench import tclisten_adapter
    from tclisten.app import Listener

    app = Listener("bench-overhead", broker_url=common.BROKER_URL)
    topic = tclisten_adapter.topic()
    for i, spec in enumerate(binding_specs()):
        def handler(message: Any, ctx: Any, _i: int = i) -> None:
            handled.append(_i)
        spec = dict(spec)
        route = spec.pop("route", None)
        if route is not None:
            app.add_handler(handler, topic, route=route, name=f"h{i}")
        else:
            app.add_handler(handler, topic, name=f"h{i}", **spec)
    return app


class RegexListener:
    """What people write by hand: a compiled regex per binding, tried on every key."""

    def __init__(self, patterns: list[tuple[str, Any]]) -> None:
        self.compiled = [(re.compile(self.regex(p)), h) for p, h in patterns]

    @staticmethod
    def regex(pattern: str) -> str:
        """Matched against ``"." + key``: ``*`` is one word, ``#`` any number of words."""
        parts = []
        for word in pattern.split("."):
            parts.append(r"\.[^.]*" if word == "*" else r"(?:\.[^.]*)*" if word == "#" else r"\." + re.escape(word))
        return "".join(parts) + "$"

    def dispatch(self, routing_key: str, body: bytes, headers: dict) -> int:
        decoded = json.loads(body)
        keys = [routing_key, *headers.get("CC", ())]
        called = 0
        for regex, handler in self.compiled:
            if any(regex.match("." + k) for k in keys):
                handler(decoded)
                called += 1
        return called


def measure(count: int = 20000) -> dict[str, float]:
    """µs per message for each way of dispatching ``count`` messages (one pass each)."""
    msgs = messages(count)
    handled: list = []
    app = build_listener(handled)
    exchange = common.EXCHANGE
    dispatcher = app.dispatcher
    for key, raw, body, headers in msgs[:200]:  # warm the matcher's lazy states
        app.dispatch(exchange, key, raw, headers)
    results = {}

    start = time.process_time()
    for key, raw, body, headers in msgs:
        app.dispatch(exchange, key, body, headers)
    results["tclisten dispatch, body decoded"] = (time.process_time() - start) / count * 1e6

    start = time.process_time()
    for key, raw, body, headers in msgs:
        app.dispatch(exchange, key, raw, headers)
    results["tclisten dispatch, JSON body"] = (time.process_time() - start) / count * 1e6

    start = time.process_time()
    for key, raw, body, headers in msgs:
        dispatcher.match(exchange, key, headers["CC"])
    results["tclisten matcher only"] = (time.process_time() - start) / count * 1e6

    start = time.process_time()
    for key, raw, body, headers in msgs:
        json.loads(raw)
    results["calibration: json.loads of the body alone"] = (time.process_time() - start) / count * 1e6

    calls = len(handled) - 200
    if calls < 2 * count:
        raise RuntimeError(f"{calls} handler calls for {2 * count} dispatches: the bindings do not match")

    regex = RegexListener([(b.pattern, lambda body: None) for b in app.bindings])
    regex_calls = 0
    some = msgs[: max(count // 5, 1)]  # 20x slower: a fifth of the messages is plenty
    start = time.process_time()
    for key, raw, body, headers in some:
        regex_calls += regex.dispatch(key, raw, headers)
    results["hand-written: regex per binding, JSON body"] = (time.process_time() - start) / len(some) * 1e6
    expected = sum(len(dispatcher.match(exchange, key, headers["CC"])) for key, _, _, headers in some)
    if regex_calls != expected:
        raise RuntimeError(f"the regex listener made {regex_calls} calls, tclisten's matcher finds {expected}")
    return results
