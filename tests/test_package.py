"""The built wheel works on its own: installed into a fresh venv (no system site-packages,
no source tree on the path), it finds its bundled references and builds clients.

Takes ~30 s (a wheel build and a venv with the runtime dependencies from the package index),
so it runs once per session and only what must be checked in the venv runs there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support.env import ROOT

CHECK = r"""
import json, sys
import tclisten
import tclisten.taskcluster.references as refs
from tclisten.taskcluster.client import Queue, bundled_services, client_class
if "Queue" in tclisten.__all__:  # exported by the package itself
    assert tclisten.Queue is Queue
queue = Queue({"rootUrl": "https://tc.example.com"})
print(json.dumps({
    "file": tclisten.__file__,
    "references": str(refs.bundled_dir()),
    "url": queue.buildUrl("task", "abc"),
    "services": {name: client_class(name).serviceName for name in bundled_services()},
    "sys_path": sys.path,
}))
"""


def _run(args: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def test_wheel_installs_into_a_fresh_venv_and_finds_its_references(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "TASKCLUSTER_")) and k != "VIRTUAL_ENV"}
    source = tmp_path / "src"  # a copy, so the build writes nothing into the checkout
    source.mkdir()
    for name in ("setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("tclisten", "references", "examples"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))

    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source)],
         tmp_path, env)
    (wheel,) = dist.glob("tclisten-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for member in ("tclisten/taskcluster/client.py", "tclisten/taskcluster/calls.py", "tclisten/taskcluster/hawk.py",
                   "tclisten/py.typed", "tclisten/cli/commands.py", "tclisten/testing/kit.py",
                   "tclisten/taskcluster/reference_data/manifest.json",
                   "tclisten/taskcluster/reference_data/queue/v1/api.json",
                   "tclisten/taskcluster/reference_data/schemas/queue/v1/task-failed-message.json",
                   "tclisten/taskcluster/schemas.py",
                   "tclisten/examples/reactor.py", "tclisten/examples/messages/all.jsonl"):
        assert member in names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
         tmp_path, env)

    # -I: isolated mode, neither the checkout nor the current directory is on sys.path
    out = json.loads(_run([str(python), "-I", "-c", CHECK], tmp_path, env).splitlines()[-1])
    site = Path(out["file"]).resolve().parent.parent
    assert Path(out["file"]).resolve().is_relative_to(venv.resolve())
    assert Path(out["references"]) == site / "tclisten" / "taskcluster" / "reference_data"
    assert out["url"] == "https://tc.example.com/api/queue/v1/task/abc"
    assert out["services"]["PurgeCache"] == "purge-cache"
    assert len(out["services"]) >= 12
    assert not any(str(ROOT) in entry for entry in out["sys_path"])

    # the README's main job, from the installed package, run outside the checkout
    demo = venv / ("Scripts/tclisten.exe" if os.name == "nt" else "bin/tclisten")
    assert "rerun" in _run([str(demo), "demo"], tmp_path, env)
