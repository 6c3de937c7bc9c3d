"""tclisten: react to Taskcluster's Pulse messages, call Taskcluster back.

>>> import tclisten
>>> tclisten.QueueEvents.taskCompleted.exchange
'exchange/taskcluster-queue/v1/task-completed'

Names are resolved on first use (PEP 562), so ``import tclisten`` reads no reference and
builds no class until one is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # the real names for type checkers and editors; at run time __getattr__ imports them
    from .app import (EXIT_UNFINISHED as EXIT_UNFINISHED, Hook as Hook, Listener as Listener,
                      StopSummary as StopSummary, default_listener as default_listener, on as on, run as run)
    from .config import (ListenerConfig as ListenerConfig, build_listener as build_listener,
                         load_config as load_config)
    from .context import Context as Context
    from .exceptions import (BindingError as BindingError, BrokerError as BrokerError, CallError as CallError,
                             ConfigError as ConfigError, CredentialsError as CredentialsError,
                             HandlerTimeout as HandlerTimeout, Park as Park,
                             ReferenceFormatError as ReferenceFormatError, Retry as Retry,
                             TaskclusterAuthFailure as TaskclusterAuthFailure,
                             TaskclusterConnectionError as TaskclusterConnectionError,
                             TaskclusterFailure as TaskclusterFailure,
                             TaskclusterRestFailure as TaskclusterRestFailure,
                             TaskclusterTopicExchangeFailure as TaskclusterTopicExchangeFailure,
                             TclistenError as TclistenError)
    from .exchanges import (AuthEvents as AuthEvents, GithubEvents as GithubEvents,
                            HooksEvents as HooksEvents, NotifyEvents as NotifyEvents,
                            QueueEvents as QueueEvents, SchedulerEvents as SchedulerEvents, Topic as Topic,
                            WorkerManagerEvents as WorkerManagerEvents, exchanges_class as exchanges_class)
    from .health import HealthServer as HealthServer
    from .matching import TopicMatcher as TopicMatcher
    from .message import (Message as Message, Routing as Routing)
    from .parked import ParkedMessage as ParkedMessage
    from .policy import RetryPolicy as RetryPolicy
    from .taskcluster.client import (Auth as Auth, BaseClient as BaseClient, Github as Github, Hooks as Hooks,
                                     Index as Index, Notify as Notify, Object as Object,
                                     PurgeCache as PurgeCache, Queue as Queue, Scheduler as Scheduler,
                                     Secrets as Secrets, WebServer as WebServer,
                                     WorkerManager as WorkerManager, client_class as client_class)
    from .taskcluster.credentials import (Credentials as Credentials,
                                          createTemporaryCredentials as createTemporaryCredentials)
    from .taskcluster.utils import (dumpJson as dumpJson, fromNow as fromNow, fromNowJSON as fromNowJSON,
                                    isExpired as isExpired, satisfies as satisfies, scopeMatch as scopeMatch,
                                    slugId as slugId, stableSlugId as stableSlugId, stringDate as stringDate)
    from .testing.factories import (FactoryMessage as FactoryMessage, message_for as message_for)

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
