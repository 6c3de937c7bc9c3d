"""The second argument of every handler: REST clients, a logger, the configuration.

>>> ctx = Context(ClientPool({"rootUrl": "https://tc.example.com"}), config={"budget": 3})
>>> ctx.config["budget"]
3
>>> ctx.queue.buildUrl("task", "abc")          # built on first use, then reused
'https://tc.example.com/api/queue/v1/task/abc'
"""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    from .taskcluster.client import (Auth, Github, Hooks, Index, Notify, Object, PurgeCache, Queue, Scheduler,
                                     Secrets, WebServer, WorkerManager)

__all__ = ["ClientPool", "Context"]


def _class_name(attribute: str) -> str:
    """``purge_cache`` -> ``PurgeCache``, ``queue`` -> ``Queue``."""
    return "".join(part[:1].upper() + part[1:] for part in attribute.split("_") if part)


class ClientPool:
    """Taskcluster REST clients built lazily from one set of options, shared by every
    handler and worker thread of a listener (one keep-alive session per service)."""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self._options = dict(options or {})
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, class_name: str) -> Any:
        client = self._clients.get(class_name)
        if client is None:
            from .taskcluster.client import client_class

            with self._lock:
                client = self._clients.get(class_name)
                if client is None:
                    client = self._clients[class_name] = client_class(class_name)(dict(self._options))
        return client

    def swap(self, options: Mapping[str, Any] | None) -> Callable[[], None]:
        """Build clients from other options from now on (clients already built are
        forgotten); returns the function that puts the previous options back."""
        with self._lock:
            saved = (self._options, self._clients)
            self._options, self._clients = dict(options or {}), {}

        def restore() -> None:
            with self._lock:
                for client in self._clients.values():
                    close = getattr(client, "close", None)
                    if close is not None:
                        close()
                self._options, self._clients = saved

        return restore

    def has_root_url(self) -> bool:
        """Whether the clients are given a rootUrl (else they need TASKCLUSTER_ROOT_URL)."""
        return bool(self._options.get("rootUrl"))

    def __repr__(self) -> str:  # options hold credentials: never show them
        return f"<ClientPool {sorted(self._clients)}>"


_ATTRIBUTE = re.compile(r"^[a-z][a-z0-9_]*$")


class Context:
    """What a handler gets besides the message.

    ``ctx.queue``, ``ctx.index``, ``ctx.purge_cache``, ... : preconfigured clients of any
    bundled service (``ctx.client("WorkerManager")`` does the same by class name);
    ``ctx.logger``: the handler's logger; ``ctx.config``: the listener's configuration;
    ``ctx.listener``: the listener's name.
    """

    if TYPE_CHECKING:
        # What __getattr__ gives, one client per bundled service (tests/test_exports.py
        # keeps the list equal to the bundled API references).
        auth: Auth
        github: Github
        hooks: Hooks
        index: Index
        notify: Notify
        object: Object
        purge_cache: PurgeCache
        queue: Queue
        scheduler: Scheduler
        secrets: Secrets
        web_server: WebServer
        worker_manager: WorkerManager

    def __init__(self, clients: ClientPool, *, logger: logging.Logger | None = None,
                 config: Mapping[str, Any] | None = None, listener: str = "", handler: str = "") -> None:
        self._clients = clients
        self.logger = logger or logging.getLogger("tclisten.handler")
        self.config = config if config is not None else {}
        self.listener = listener
        self.handler = handler

    def client(self, class_name: str) -> Any:
        return self._clients.get(class_name)

    def __getattr__(self, name: str) -> Any:
        if not _ATTRIBUTE.match(name):
            raise AttributeError(name)
        from .taskcluster.references import bundled

        class_name = _class_name(name)
        if class_name not in bundled() or bundled()[class_name].kind != "api":
            raise AttributeError(f"ctx has no client {name!r} (no bundled service {class_name!r})")
        return self._clients.get(class_name)

    def __repr__(self) -> str:
        return f"<Context listener={self.listener!r} handler={self.handler!r}>"
