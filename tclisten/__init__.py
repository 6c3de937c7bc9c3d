"""tclisten: react to Taskcluster's Pulse messages, call Taskcluster back.

>>> import tclisten
>>> tclisten.QueueEvents.taskCompleted.exchange
'exchange/taskcluster-queue/v1/task-completed'

Names are resolved on first use (PEP 562), so ``import tclisten`` reads no reference and
builds no class until one is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "TclistenError": "exceptions",
    "TaskclusterFailure": "exceptions",
    "TaskclusterRestFailure": "exceptions",
    "TaskclusterAuthFailure": "exceptions",
    "TaskclusterConnectionError": "exceptions",
    "TaskclusterTopicExchangeFailure": "exceptions",
    "BindingError": "exceptions",
    "CallError": "exceptions",
    "ReferenceFormatError": "exceptions",
    "ConfigError": "exceptions",
    "CredentialsError": "exceptions",
    "BrokerError": "exceptions",
    "HandlerTimeout": "exceptions",
    "Park": "exceptions",
    "Retry": "exceptions",
    # the listener
    "Listener": "app",
    "ParkedMessage": "parked",
    "Hook": "app",
    "StopSummary": "app",
    "EXIT_UNFINISHED": "app",
    "default_listener": "app",
    "on": "app",
    "run": "app",
    "RetryPolicy": "policy",
    "Message": "message",
    "Routing": "message",
    "Context": "context",
    "TopicMatcher": "matching",
    "HealthServer": "health",
    # REST clients
    "BaseClient": "taskcluster.client",
    "client_class": "taskcluster.client",
    **{name: "taskcluster.client" for name in ("Auth", "Github", "Hooks", "Index", "Notify", "Object", "PurgeCache",
                                   "Queue", "Scheduler", "Secrets", "WebServer", "WorkerManager")},
    # exchanges
    "Topic": "exchanges",
    "exchanges_class": "exchanges",
    **{name: "exchanges" for name in ("AuthEvents", "GithubEvents", "HooksEvents", "NotifyEvents",
                                      "QueueEvents", "SchedulerEvents", "WorkerManagerEvents")},
    # YAML listeners and message factories
    "load_config": "config",
    "build_listener": "config",
    "ListenerConfig": "config",
    "message_for": "testing.factories",
    "FactoryMessage": "testing.factories",
    # credentials and helpers users of the 2015 client expect
    "Credentials": "taskcluster.credentials",
    "createTemporaryCredentials": "taskcluster.credentials",
    "slugId": "taskcluster.utils",
    "stableSlugId": "taskcluster.utils",
    "fromNow": "taskcluster.utils",
    "fromNowJSON": "taskcluster.utils",
    "stringDate": "taskcluster.utils",
    "dumpJson": "taskcluster.utils",
    "isExpired": "taskcluster.utils",
    "scopeMatch": "taskcluster.utils",
    "satisfies": "taskcluster.utils",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tclisten' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
