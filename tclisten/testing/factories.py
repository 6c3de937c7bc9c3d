"""Realistic Taskcluster Pulse messages for tests, demos and replays (pure, stdlib only).

Every exchange tclisten bundles has a factory that returns a :class:`FactoryMessage`: the
full exchange name, the routing key built the way Taskcluster's publishers build it (``_``
for an optional word without a value, 10 words on the queue's task exchanges), a body that
validates against the exchange's JSON schema, and the ``CC`` header that carries the task's
routes as ``route.<route>`` keys.

>>> msg = message_for("QueueEvents.taskFailed", taskId="fN1SbArXTPSVFNUvaOlinQ",
...                   routes=["index.project.x"])
>>> msg.routing_key.split(".")[:3]
['primary', 'fN1SbArXTPSVFNUvaOlinQ', '0']
>>> msg.body["status"]["state"], msg.headers["CC"]
('failed', ['route.index.project.x'])

Anything in the body can be overridden by keyword (``taskGroupId``, ``runId``, ``state``,
``reasonResolved``, ``workerType``, ...); :func:`factory_names` lists the exchanges and
``help(factory_for(name))`` the keywords one accepts.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import inspect
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from ..exceptions import did_you_mean

if TYPE_CHECKING:
    from ..taskcluster.references import Exchange

__all__ = [
    "FactoryMessage",
    "build_routing_key",
    "factory_for",
    "factory_names",
    "message_for",
    "slug",
]

#: Run resolutions after which the queue retries the task by itself (a new run), so a
#: task-exception message with one of them only goes out once no retry is left.
AUTO_RETRY_REASONS = frozenset({"worker-shutdown", "claim-expired", "intermittent-task"})


@dataclass(frozen=True)
class FactoryMessage:
    """One message as a publisher would send it.

    >>> m = message_for("QueueEvents.taskCompleted")
    >>> m.exchange
    'exchange/taskcluster-queue/v1/task-completed'
    >>> sorted(m.as_record())
    ['body', 'exchange', 'headers', 'routing_key']
    """

    exchange: str
    routing_key: str
    body: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)

    @property
    def routing_keys(self) -> list[str]:
        """The primary routing key then the CC keys: every key the message is routed by."""
        return [self.routing_key, *self.headers.get("CC", [])]

    def as_record(self) -> dict:
        """The JSON-lines record ``tclisten record`` writes and ``tclisten replay`` reads."""
        return {"exchange": self.exchange, "routing_key": self.routing_key,
                "body": self.body, "headers": self.headers}


def slug() -> str:
    """A fresh "nice" slugid: a v4 UUID in url-safe base64, never starting with ``-``.

    >>> len(slug()), slug()[0] != "-"
    (22, True)
    """
    raw = bytearray(uuid.uuid4().bytes)
    raw[0] &= 0x7F
    return base64.urlsafe_b64encode(bytes(raw)).decode("ascii")[:22]


def _when(now: _dt.datetime | None, **delta: float) -> str:
    base = now or _dt.datetime.now(_dt.timezone.utc)
    moment = base + _dt.timedelta(**delta)
    return moment.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{moment.microsecond // 1000:03d}Z"


# --------------------------------------------------------------------------- routing keys


def _exchange_spec(name: str) -> tuple[str, Exchange, str]:
    """``(class_name, Exchange, full exchange name)`` of a bundled exchange, named as
    :func:`tclisten.topics.resolve` accepts it."""
    from ..topics import resolve

    topic = resolve(name)
    if not hasattr(topic, "entry"):
        raise ValueError(f"no bundled exchange {name!r}: factory_names() lists them")
    return topic.service, topic.entry, topic.exchange


def build_routing_key(exchange: Any, values: Mapping[str, Any]) -> str:
    """The routing key a Taskcluster publisher writes for ``values``.

    ``exchange`` is a :class:`tclisten.taskcluster.references.Exchange`. Constant words are filled in,
    an optional word without a value becomes ``_``; a required word must have a value, a
    single word may not contain ``.`` nor exceed its ``max_size``.

    >>> from tclisten.taskcluster.references import bundled
    >>> ex = bundled()["QueueEvents"].exchange("taskGroupResolved")
    >>> build_routing_key(ex, {"taskGroupId": "G", "schedulerId": "s"})
    'primary.G.s._'
    """
    words = []
    for spec in exchange.routing_key:
        if spec.constant is not None:
            words.append(spec.constant)
            continue
        value = values.get(spec.name)
        if value is None or value == "":
            if spec.required:
                raise ValueError(f"routing-key word {spec.name!r} of {exchange.name} needs a value")
            words.append("_")
            continue
        value = str(value)
        if not spec.multiple_words:
            if "." in value:
                raise ValueError(f"routing-key word {spec.name!r} cannot contain '.': {value!r}")
            if spec.max_size is not None and len(value) > spec.max_size:
                raise ValueError(f"routing-key word {spec.name!r} is longer than "
                                 f"{spec.max_size} characters: {value!r}")
        words.append(value)
    key = ".".join(words)
    if len(key.encode("utf-8")) > 255:
        raise ValueError(f"routing key of {exchange.name} is longer than 255 bytes")
    return key


def _cc(routes: Iterable[str]) -> dict:
    if isinstance(routes, str):
        raise TypeError("routes must be a list of strings, not a string")
    return {"CC": [f"route.{route}" for route in routes]}


# --------------------------------------------------------------------------- queue: tasks

_QUEUE_TASK_STATES = {
    "taskDefined": "unscheduled",
    "taskPending": "pending",
    "taskRunning": "running",
    "artifactCreated": "running",
    "taskCompleted": "completed",
    "taskFailed": "failed",
    "taskException": "exception",
    "taskPriorityChanged": "pending",
}
# which of runId / workerGroup / workerId / takenUntil the body carries
_BODY_RUN_FIELDS = {
    "taskDefined": (),
    "taskPending": ("runId",),
    "taskRunning": ("runId", "workerGroup", "workerId", "takenUntil"),
    "artifactCreated": ("runId", "workerGroup", "workerId"),
    "taskCompleted": ("runId", "workerGroup", "workerId"),
    "taskFailed": ("runId", "workerGroup", "workerId"),
    "taskException": ("runId", "workerGroup", "workerId"),
    "taskPriorityChanged": (),
}
_RESOLVED = {"completed": "completed", "failed": "failed", "exception": "deadline-exceeded"}


def _run(run_id: int, state: str, *, scheduled: str, worker_group: str | None,
         worker_id: str | None, reason_resolved: str | None, now: _dt.datetime | None,
         reason_created: str) -> dict:
    run: dict[str, Any] = {"runId": run_id, "state": state, "reasonCreated": reason_created,
                           "scheduled": scheduled}
    if state != "pending" and worker_group and worker_id:
        run.update(workerGroup=worker_group, workerId=worker_id,
                   takenUntil=_when(now, minutes=20), started=_when(now, minutes=-10))
    if state in _RESOLVED:
        run["reasonResolved"] = reason_resolved or _RESOLVED[state]
        run["resolved"] = _when(now)
    return run


def _task_runs(run_id: int | None, state: str, *, worker_group: str | None, worker_id: str | None,
               reason_resolved: str | None, reason_created: str | None,
               now: _dt.datetime | None) -> list[dict]:
    """The runs of a task whose run ``run_id`` is in ``state``: the earlier ones ended in an
    infrastructure retry.  An unscheduled task has none."""
    if run_id is None or state == "unscheduled":
        return []
    runs = [_run(earlier, "exception", scheduled=_when(now, hours=-1), worker_group=worker_group,
                 worker_id=worker_id, reason_resolved="worker-shutdown", now=now,
                 reason_created="scheduled" if earlier == 0 else "retry")
            for earlier in range(run_id)]
    runs.append(_run(run_id, state, scheduled=_when(now, minutes=-15), worker_group=worker_group,
                     worker_id=worker_id, reason_resolved=reason_resolved, now=now,
                     reason_created=reason_created or ("scheduled" if run_id == 0 else "retry")))
    return runs


def _run_fields(name: str, runs: list[dict], run_id: int | None) -> dict[str, Any]:
    """What the body of exchange ``name`` says of the current run besides the status
    (``runId``; ``workerGroup``, ``workerId`` and ``takenUntil`` once a worker claimed it)."""
    fields: dict[str, Any] = {}
    claimed = bool(runs) and "workerGroup" in runs[-1]
    for key in _BODY_RUN_FIELDS[name]:
        if key == "runId" and run_id is not None:
            fields["runId"] = run_id
        elif key in ("workerGroup", "workerId", "takenUntil") and claimed:
            fields[key] = runs[-1][key]
    return fields


def _queue_task(name: str, *, taskId: str | None = None, taskGroupId: str | None = None,
                runId: int | None = None, state: str | None = None,
                reasonResolved: str | None = None, reasonCreated: str | None = None,
                provisionerId: str = "proj-example", workerType: str = "ci",
                schedulerId: str = "taskcluster-ui", projectId: str = "none",
                workerGroup: str | None = "us-east-1", workerId: str | None = "i-0123456789abcdef",
                retriesLeft: int | None = None, deadline: str | None = None,
                expires: str | None = None, tags: Mapping[str, str] | None = None,
                routes: Iterable[str] = (), priority: str | None = None,
                oldPriority: str = "lowest", newPriority: str = "high",
                artifactName: str = "public/logs/live.log", contentType: str = "text/plain",
                storageType: str = "reference",
                now: _dt.datetime | None = None) -> FactoryMessage:
    """A message of one of the queue's task exchanges."""
    cls, spec, exchange = _exchange_spec(f"QueueEvents.{name}")
    task_id = taskId or slug()
    group_id = taskGroupId or task_id
    state = state or _QUEUE_TASK_STATES[name]
    if reasonResolved is not None and state not in _RESOLVED:
        raise ValueError(f"reasonResolved={reasonResolved!r} needs a resolved state, not {state!r}")
    if retriesLeft is None:
        retriesLeft = 0 if reasonResolved in AUTO_RETRY_REASONS else 5
    if runId is None:
        runId = 0 if state != "unscheduled" else None
    runs = _task_runs(runId, state, worker_group=workerGroup, worker_id=workerId,
                      reason_resolved=reasonResolved, reason_created=reasonCreated, now=now)
    status: dict[str, Any] = {
        "taskId": task_id, "provisionerId": provisionerId, "workerType": workerType,
        "taskQueueId": f"{provisionerId}/{workerType}", "schedulerId": schedulerId,
        "projectId": projectId, "taskGroupId": group_id,
        "deadline": deadline or _when(now, days=1), "expires": expires or _when(now, days=365),
        "retriesLeft": retriesLeft, "state": state, "runs": runs,
    }
    if priority is not None:
        status["priority"] = priority
    body: dict[str, Any] = {"version": 1, "status": status, **_run_fields(name, runs, runId)}
    if name == "artifactCreated":
        body["artifact"] = {"storageType": storageType, "name": artifactName,
                            "expires": status["expires"], "contentType": contentType}
    elif name == "taskPriorityChanged":
        body["oldPriority"], body["newPriority"] = oldPriority, newPriority
    if name not in ("artifactCreated", "taskPriorityChanged"):
        body["task"] = {"tags": dict(tags or {})}
    # the publisher takes runId / workerGroup / workerId from the body, '_' where absent
    words = {"taskId": task_id, "provisionerId": provisionerId, "workerType": workerType,
             "schedulerId": schedulerId, "taskGroupId": group_id, "runId": body.get("runId"),
             "workerGroup": body.get("workerGroup"), "workerId": body.get("workerId")}
    return FactoryMessage(exchange, build_routing_key(spec, words), body, _cc(routes))


# --------------------------------------------------------------------------- queue: groups


def _queue_group(name: str, *, taskGroupId: str | None = None, schedulerId: str = "taskcluster-ui",
                 expires: str | None = None, sealed: str | None = None,
                 newPriority: str = "high", tasksAffected: int = 1,
                 routes: Iterable[str] = (), now: _dt.datetime | None = None) -> FactoryMessage:
    """A message of one of the queue's task-group exchanges."""
    _, spec, exchange = _exchange_spec(f"QueueEvents.{name}")
    group_id = taskGroupId or slug()
    body: dict[str, Any] = {"version": 1, "taskGroupId": group_id, "schedulerId": schedulerId}
    if name == "taskGroupPriorityChanged":
        body.update(newPriority=newPriority, tasksAffected=tasksAffected)
    else:
        body["expires"] = expires or _when(now, days=365)
        if sealed or name == "taskGroupSealed":
            body["sealed"] = sealed or _when(now)
    key = build_routing_key(spec, {"taskGroupId": group_id, "schedulerId": schedulerId})
    return FactoryMessage(exchange, key, body, _cc(routes))


# --------------------------------------------------------------------------- other services


def _auth(name: str, *, clientId: str = "project/example/ci", roleId: str = "project:example:ci",
          routes: Iterable[str] = ()) -> FactoryMessage:
    """A message of an auth exchange (clients and roles)."""
    _, spec, exchange = _exchange_spec(f"AuthEvents.{name}")
    body: dict[str, Any] = {"version": 1}
    if name.startswith("client"):
        body["clientId"] = clientId
    else:
        body["roleId"] = roleId
    return FactoryMessage(exchange, build_routing_key(spec, {}), body, _cc(routes))


def _hooks(name: str, *, hookGroupId: str = "project-example", hookId: str = "nightly",
           routes: Iterable[str] = ()) -> FactoryMessage:
    """A message of a hooks exchange."""
    _, spec, exchange = _exchange_spec(f"HooksEvents.{name}")
    body = {"hookGroupId": hookGroupId, "hookId": hookId}
    return FactoryMessage(exchange, build_routing_key(spec, {}), body, _cc(routes))


def _notify(name: str, *, topic: str = "project.example.builds",
            message: Mapping[str, Any] | None = None, routes: Iterable[str] = ()) -> FactoryMessage:
    """A message of the notify service's pulse notification exchange."""
    _, spec, exchange = _exchange_spec(f"NotifyEvents.{name}")
    body = {"version": 1, "message": dict(message if message is not None else {"text": "hello"})}
    return FactoryMessage(exchange, build_routing_key(spec, {"topic": topic}), body, _cc(routes))


# The github service's tasks_for per exchange.  A rerun (of a check run) carries the
# tasks_for of the event that made the check: a push here, or a pull request.
_GITHUB_TASKS_FOR = {"pullRequest": "github-pull-request", "push": "github-push",
                     "release": "github-release", "rerun": "github-push"}


def _github(name: str, *, organization: str = "example-org", repository: str = "example-repo",
            action: str = "opened", branch: str = "main", installationId: int = 5808,
            eventId: str | None = None, taskGroupId: str | None = None,
            checkRunId: int = 1001, checkSuiteId: int = 2002, tasks_for: str | None = None,
            body: Mapping[str, Any] | None = None, routes: Iterable[str] = ()) -> FactoryMessage:
    """A message of a github exchange (organization and repository with ``.`` as ``%``);
    ``tasks_for`` defaults to what the github service sends on that exchange."""
    _, spec, exchange = _exchange_spec(f"GithubEvents.{name}")
    org, repo = organization.replace(".", "%"), repository.replace(".", "%")
    message: dict[str, Any] = {"version": 1, "organization": org, "repository": repo}
    if name == "taskGroupCreationRequested":
        message["taskGroupId"] = taskGroupId or slug()
    else:
        message.update(installationId=installationId, eventId=eventId or str(uuid.uuid4()),
                       body=dict(body or {}), tasks_for=tasks_for or _GITHUB_TASKS_FOR[name],
                       details={})
        if name == "rerun":
            message.update(checkRunId=checkRunId, checkSuiteId=checkSuiteId)
        else:
            message["branch"] = branch
        if name == "pullRequest":
            message["action"] = action
    words = {"organization": org, "repository": repo, "action": action}
    return FactoryMessage(exchange, build_routing_key(spec, words), message, _cc(routes))


# The fields beyond workerPoolId and providerId that each family of worker-manager messages
# may carry (its schema's), besides its own (errorId, capacity, ...).
_WORKER_MANAGER_FIELDS = {
    "workerPool": ("previousProviderId",),
    "workerPoolError": ("workerGroup", "workerId", "launchConfigId"),
    "worker": ("workerGroup", "workerId", "launchConfigId"),
    "launchConfig": ("launchConfigId",),
}


def _worker_manager_family(name: str) -> str:
    if name == "workerPoolError":
        return name
    return next(family for family in ("workerPool", "launchConfig", "worker") if name.startswith(family))


def _worker_manager(name: str, *, workerPoolId: str = "proj-example/ci", providerId: str = "aws",
                    workerGroup: str | None = None, workerId: str | None = None,
                    launchConfigId: str | None = None, capacity: int = 1,
                    reason: str = "terminated by provider", errorId: str | None = None,
                    kind: str = "creation-error", title: str = "Instance Creation Error",
                    previousProviderId: str | None = None, routes: Iterable[str] = (),
                    now: _dt.datetime | None = None) -> FactoryMessage:
    """A message of a worker-manager exchange (pools, pool errors, workers, launch
    configurations).  A worker's messages default to a worker in ``us-east-1``; a pool error
    names a worker or a launch configuration only when given one."""
    _, spec, exchange = _exchange_spec(f"WorkerManagerEvents.{name}")
    family = _worker_manager_family(name)
    body: dict[str, Any] = {"workerPoolId": workerPoolId, "providerId": providerId}
    given = {"workerGroup": workerGroup, "workerId": workerId, "launchConfigId": launchConfigId,
             "previousProviderId": previousProviderId}
    if family == "workerPoolError":
        body.update(errorId=errorId or slug(), kind=kind, title=title, timestamp=_when(now))
    elif family == "launchConfig":
        given["launchConfigId"] = launchConfigId or "lc-example"
    elif family == "worker":
        given.update(workerGroup=workerGroup or "us-east-1", workerId=workerId or "i-0123456789abcdef")
        body.update(capacity=capacity, timestamp=_when(now))
        if name == "workerRemoved":
            body["reason"] = reason
    for key, value in given.items():
        if value is not None:
            if key not in _WORKER_MANAGER_FIELDS[family]:
                raise ValueError(f"WorkerManagerEvents.{name} messages carry no {key}")
            body[key] = value
    # the publisher takes every word of the key from the message (commonRoutingKeyBuilder)
    provisioner, _, worker_type = workerPoolId.partition("/")
    words = {**body, "provisionerId": provisioner, "workerType": worker_type}
    return FactoryMessage(exchange, build_routing_key(spec, words), body, _cc(routes))


_SCHEDULER_STATES = {"taskGraphRunning": "running", "taskGraphExtended": "running",
                     "taskGraphBlocked": "blocked", "taskGraphFinished": "finished"}


def _scheduler(name: str, *, taskGraphId: str | None = None, schedulerId: str = "task-graph-scheduler",
               taskId: str | None = None, routes: Iterable[str] = ()) -> FactoryMessage:
    """A message of the 2015 scheduler's exchanges (the service no longer exists)."""
    _, spec, exchange = _exchange_spec(f"SchedulerEvents.{name}")
    graph_id = taskGraphId or slug()
    body: dict[str, Any] = {"version": 1, "status": {"taskGraphId": graph_id, "schedulerId": schedulerId,
                                                     "state": _SCHEDULER_STATES[name]}}
    if name == "taskGraphBlocked":
        body["taskId"] = taskId or slug()
    words = {"taskGraphId": graph_id, "schedulerId": schedulerId,
             "taskId": body.get("taskId")}
    return FactoryMessage(exchange, build_routing_key(spec, words), body, _cc(routes))


_BUILDERS: dict[str, Callable[..., FactoryMessage]] = {
    "AuthEvents": _auth,
    "GithubEvents": _github,
    "HooksEvents": _hooks,
    "NotifyEvents": _notify,
    "SchedulerEvents": _scheduler,
    "WorkerManagerEvents": _worker_manager,
}


def _builder(cls: str, entry: str) -> Callable[..., FactoryMessage]:
    if cls == "QueueEvents":
        return _queue_task if entry in _QUEUE_TASK_STATES else _queue_group
    try:
        return _BUILDERS[cls]
    except KeyError:
        raise ValueError(f"no message factory for {cls}.{entry}") from None


# --------------------------------------------------------------------------- public API


@functools.lru_cache(maxsize=None)
def factory_names() -> tuple[str, ...]:
    """Every bundled exchange as ``Class.name``; each has a factory.

    >>> "QueueEvents.taskException" in factory_names()
    True
    """
    from ..taskcluster.references import ExchangesReference, bundled

    return tuple(f"{cls}.{ex.name}" for cls, ref in sorted(bundled().items())
                 if isinstance(ref, ExchangesReference) for ex in ref.exchanges)


def _topic_name(topic: Any) -> str:
    """``'QueueEvents.taskFailed'``, a full exchange name, or a Topic object."""
    if isinstance(topic, str):
        return topic
    for attr in ("exchange", "name"):  # a Topic carries its full exchange name
        value = getattr(topic, attr, None)
        if isinstance(value, str) and value.startswith("exchange/"):
            return value
    raise TypeError(f"expected an exchange name or a Topic, not {type(topic).__name__}")


def factory_for(topic: Any) -> Callable[..., FactoryMessage]:
    """The factory of one exchange: call it with keyword overrides.

    >>> task_failed = factory_for("QueueEvents.taskFailed")
    >>> task_failed(runId=1).body["runId"]
    1
    """
    cls, spec, _ = _exchange_spec(_topic_name(topic))
    builder = _builder(cls, spec.name)
    factory = functools.partial(builder, spec.name)
    functools.update_wrapper(factory, builder)
    factory.__name__ = spec.name  # type: ignore[attr-defined]
    return factory


def message_for(topic: Any, **overrides: Any) -> FactoryMessage:
    """A schema-valid message of ``topic`` (a Topic, ``'QueueEvents.taskFailed'`` or a full
    exchange name), with ``overrides`` (``taskId=``, ``runId=``, ``routes=[...]``, ...).

    >>> message_for("QueueEvents.taskException", reasonResolved="internal-error"
    ...             ).body["status"]["runs"][-1]["reasonResolved"]
    'internal-error'
    """
    cls, spec, _ = _exchange_spec(_topic_name(topic))
    builder = _builder(cls, spec.name)
    accepted = [p for p in inspect.signature(builder).parameters if p != "name"]
    for key in overrides:
        if key not in accepted:
            raise TypeError(f"{cls}.{spec.name} has no override {key!r}; {did_you_mean(key, accepted)}"
                            f"accepted: {', '.join(sorted(accepted))}")
    return builder(spec.name, **overrides)
