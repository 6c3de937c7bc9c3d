"""Regenerate the sample messages in this folder from tclisten's factories.

    python examples/messages/generate.py        # rewrites the *.json and all.jsonl files next to it

Fixed ids and a fixed clock keep the files stable; tests/test_factories.py checks that they
are valid against Taskcluster's schemas and that this script reproduces them exactly.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

from tclisten.testing.factories import message_for

NOW = datetime.datetime(2026, 3, 2, 14, 30, 5, 123000, tzinfo=datetime.timezone.utc)
TASK_GROUP = "Wt-6mxx-QlCQtBZXj5DNPw"
COMMON = {"taskGroupId": TASK_GROUP, "provisionerId": "proj-example", "workerType": "linux-ci",
          "schedulerId": "taskcluster-github", "workerGroup": "us-east-1",
          "workerId": "i-0a1b2c3d4e5f67890", "tags": {"kind": "test"},
          "routes": ["index.project.example.latest", "checks"], "now": NOW}

SAMPLES = {
    "task-completed": ("QueueEvents.taskCompleted", {"taskId": "fN1SbArXTPSVFNUvaOlinQ"}),
    "task-failed": ("QueueEvents.taskFailed", {"taskId": "MiRZJtfeT3m0o5UemH-xlA", "runId": 1}),
    "task-exception-worker-shutdown": ("QueueEvents.taskException", {
        "taskId": "QotBKzuQQ2SiLOUqQ2oabw", "reasonResolved": "worker-shutdown", "runId": 5}),
    "task-exception-internal-error": ("QueueEvents.taskException", {
        "taskId": "L0sWmhxuSc6YJz4FQT5IZA", "reasonResolved": "internal-error"}),
    "task-exception-canceled": ("QueueEvents.taskException", {
        "taskId": "NSa61LI7RP67tmLiU056gQ", "reasonResolved": "canceled",
        "workerGroup": None, "workerId": None}),
    "artifact-created": ("QueueEvents.artifactCreated", {
        "taskId": "fN1SbArXTPSVFNUvaOlinQ", "artifactName": "public/build/target.tar.gz",
        "contentType": "application/gzip", "storageType": "object"}),
    "task-group-resolved": ("QueueEvents.taskGroupResolved", {
        "taskGroupId": TASK_GROUP, "schedulerId": "taskcluster-github", "now": NOW}),
}


def generate(dest: Path) -> list[Path]:
    """Write one ``<sample>.json`` per entry of SAMPLES into ``dest``, and all of them as
    ``all.jsonl`` (the format ``tclisten replay`` reads); return the paths."""
    written, lines = [], []
    for stem, (exchange, overrides) in SAMPLES.items():
        if exchange == "QueueEvents.taskGroupResolved":
            options = dict(overrides)
        else:
            options = {**COMMON, **overrides}
        message = message_for(exchange, **options)
        path = Path(dest) / f"{stem}.json"
        path.write_text(json.dumps(message.as_record(), indent=2, sort_keys=True) + "\n")
        written.append(path)
        lines.append(json.dumps(message.as_record(), sort_keys=True))
    jsonl = Path(dest) / "all.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    return written + [jsonl]


if __name__ == "__main__":
    for out in generate(Path(__file__).resolve().parent):
        print(out, file=sys.stderr)
