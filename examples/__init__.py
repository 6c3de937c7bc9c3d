"""Example listeners, installed as ``tclisten.examples`` (``tclisten demo`` runs the reactor).

- ``decorated.py``: a script with module-level ``@tclisten.on`` handlers;
- ``listener.yaml`` + ``handlers.py``: a listener described in YAML;
- ``reactor.py``: reruns tasks that died of infrastructure problems, within a budget;
- ``group_watcher.py``: reports how each task group ended;
- ``messages/``: sample Taskcluster messages (``tclisten replay`` reads ``all.jsonl``).
"""
