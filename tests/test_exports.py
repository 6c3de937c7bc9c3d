"""``tclisten.__all__`` stays honest: every name resolves to the object of the module that
defines it, the names type checkers see are the same, and import has no side effects."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import tclisten
from tclisten.context import ClientPool, Context
from tclisten.taskcluster import references
from tclisten.taskcluster.client import bundled_services

PACKAGE = Path(tclisten.__file__).resolve().parent
ROOT = PACKAGE.parent


def _type_checking(tree: ast.AST) -> list[ast.stmt]:
    """The statements of the ``if TYPE_CHECKING:`` blocks directly under ``tree`` (a module
    or a class)."""
    return [statement for node in ast.iter_child_nodes(tree)
            if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
            for statement in node.body]


def _parse(relative: str) -> ast.Module:
    return ast.parse((PACKAGE / relative).read_text(encoding="utf-8"))


def type_checking_exports() -> dict[str, str]:
    """What ``tclisten/__init__.py`` shows type checkers: exported name -> defining module."""
    found: dict[str, str] = {}
    for statement in _type_checking(_parse("__init__.py")):
        assert isinstance(statement, ast.ImportFrom), ast.unparse(statement)
        assert statement.level == 1, ast.unparse(statement)
        for alias in statement.names:
            assert alias.asname == alias.name, f"{alias.name}: re-exported as `X as X`"
            found[alias.name] = f"tclisten.{statement.module}"
    return found


def test_every_exported_name_is_the_object_of_its_module():
    exports = type_checking_exports()
    assert sorted(exports) == sorted(name for name in tclisten.__all__ if name != "__version__")
    for name, module in exports.items():
        assert getattr(tclisten, name) is getattr(importlib.import_module(module), name), name


def test_every_bundled_service_is_exported():
    assert set(references.bundled()) <= set(tclisten.__all__)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="Nope"):
        tclisten.Nope  # noqa: B018


def test_import_reads_nothing_and_builds_nothing():
    code = ("import sys, tclisten; "
            "print(sorted(m for m in sys.modules if m.startswith('tclisten')), 'kombu' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['tclisten'] False"


# --------------------------------------------------------------------------- what type checkers see


def _declared_classes(relative: str) -> set[str]:
    """Public classes declared for type checkers in a module's ``if TYPE_CHECKING:`` block."""
    return {node.name for node in _type_checking(_parse(relative))
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_")}


def test_type_checkers_know_every_bundled_client_class():
    assert _declared_classes("taskcluster/client.py") == set(bundled_services())


def test_type_checkers_know_every_bundled_exchanges_class():
    exchanges = {name for name, ref in references.bundled().items()
                 if isinstance(ref, references.ExchangesReference)}
    assert _declared_classes("exchanges.py") == exchanges


def test_type_checkers_know_every_client_of_the_context():
    context = next(node for node in _parse("context.py").body
                   if isinstance(node, ast.ClassDef) and node.name == "Context")
    declared = {node.target.id: ast.unparse(node.annotation) for node in _type_checking(context)
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}
    assert sorted(declared.values()) == bundled_services()
    ctx = Context(ClientPool({"rootUrl": "https://tc.example.com"}))
    for attribute, class_name in declared.items():
        assert type(getattr(ctx, attribute)).__name__ == class_name, attribute


USER_CODE = '''
import tclisten
from tclisten import Context, Message, QueueEvents, build_listener, load_config

@tclisten.on(QueueEvents.taskFailed)
def handler(message: Message, ctx: Context) -> None:
    reveal_type(ctx.queue)
    reveal_type(ctx.purge_cache)
    reveal_type(ctx.queue.buildUrl("task", "abc"))

reveal_type(handler)
reveal_type(QueueEvents.taskFailed)
reveal_type(QueueEvents().taskFailed)
reveal_type(build_listener(load_config("listener.yaml")))
reveal_type(tclisten.Queue({"rootUrl": "https://tc.example.com"}))
'''


def test_type_checkers_see_the_real_types_of_the_public_api(tmp_path):
    pytest.importorskip("mypy", reason="mypy is not installed")
    user = tmp_path / "user.py"
    user.write_text(USER_CODE)
    done = subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", "--ignore-missing-imports",
                           "--no-error-summary", "--cache-dir", str(tmp_path / "cache"), str(user)],
                          capture_output=True, text=True, cwd=str(ROOT), timeout=300)
    revealed = [line.split('Revealed type is "', 1)[1].rstrip('"') for line in done.stdout.splitlines()
                if "Revealed type is" in line]
    assert revealed == [
        "tclisten.taskcluster.client.Queue",
        "tclisten.taskcluster.client.PurgeCache",
        "str",
        "def (message: tclisten.message.Message, ctx: tclisten.context.Context)",
        "tclisten.exchanges.Topic",
        "tclisten.exchanges.Topic",
        "tclisten.app.Listener",
        "tclisten.taskcluster.client.Queue",
    ], done.stdout + done.stderr
