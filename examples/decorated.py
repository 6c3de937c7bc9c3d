"""The smallest listener: decorated functions in a script that runs itself.

    TCLISTEN_BROKER_URL=amqp://guest:guest@127.0.0.1:5672// python examples/decorated.py
    PULSE_USERNAME=... PULSE_PASSWORD=... python examples/decorated.py        # on Pulse

The listener is named after the script (``TCLISTEN_NAME`` overrides), so its queue is
``queue/<user>/decorated``; Ctrl-C stops it after the message in hand.
"""

from __future__ import annotations

import logging

import tclisten
from tclisten import QueueEvents


@tclisten.on(QueueEvents.taskCompleted, route="index.project.example.#")
def indexed_build_completed(message, ctx):
    """A task that indexes itself under ``project.example`` completed."""
    status = message.body["status"]
    indexed = [route for route in message.routes if route.startswith("index.")]
    print(f"completed {message.routing.taskId} (run {message.body['runId']}, group "
          f"{status['taskGroupId']}) indexed as {', '.join(indexed)}", flush=True)


@tclisten.on(QueueEvents.taskFailed, provisionerId="proj-example")
def task_failed(message, ctx):
    """A task of the ``proj-example`` provisioner failed."""
    run = message.body["status"]["runs"][-1]
    print(f"failed {message.routing.taskId} on {message.routing.workerType} "
          f"(run {run['runId']}, {run['reasonResolved']})", flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    tclisten.run()
