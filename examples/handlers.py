"""Handlers of examples/listener.yaml: plain functions ``(message, ctx)``.

``ctx.queue`` and ``ctx.notify`` are REST clients configured from the YAML file's
``taskcluster`` section; ``ctx.config`` is its ``config`` section.
"""

from __future__ import annotations

from typing import Any


def mail_owner(message: Any, ctx: Any) -> None:
    """Email the owner of a failed task (``notify:email:*`` scope needed)."""
    task_id = message.routing.taskId
    task = ctx.queue.task(task_id)
    metadata = task.get("metadata", {})
    owner = metadata.get("owner", "")
    address = owner if "@" in owner else ctx.config["fallback_address"]
    run = message.body["status"]["runs"][-1]
    ctx.notify.email({
        "address": address,
        "subject": f"{ctx.config['subject_prefix']} {metadata.get('name', task_id)} failed",
        "content": f"Task {task_id} failed in run {run['runId']} on {message.routing.workerType}.\n\n"
                   f"Source: {metadata.get('source', 'unknown')}",
    })
    ctx.logger.info("told %s that %s failed", address, task_id)


def note_indexed_build(message: Any, ctx: Any) -> None:
    """Log every completed task indexed under ``project.example``."""
    paths = [route[len("index."):] for route in message.routes if route.startswith("index.")]
    ctx.logger.info("build %s completed; indexed as %s", message.routing.taskId, ", ".join(paths))
