"""The README's generated reference: every service's methods and every exchange.

``python -m tclisten.taskcluster.docs README.md`` rewrites the section between the markers; a test
fails when the README and the bundled references disagree.

>>> "| `task(taskId)` | GET `/task/<taskId>` |" in reference_markdown()
True
"""

from __future__ import annotations

import sys
from pathlib import Path

from .references import APIReference, ExchangesReference, Function, bundled

__all__ = ["BEGIN", "END", "reference_markdown", "update_readme"]

BEGIN = "<!-- BEGIN GENERATED REFERENCE (python -m tclisten.taskcluster.docs README.md) -->"
END = "<!-- END GENERATED REFERENCE -->"


def _call(fn: Function) -> str:
    params = list(fn.args) + (["payload"] if fn.input else [])
    if fn.query:
        params.append("query={" + ", ".join(fn.query) + "}")
    return f"`{fn.name}({', '.join(params)})`"


def _api(ref: APIReference) -> list[str]:
    lines = [f"#### `tclisten.{ref.class_name}` ({ref.service_name}/{ref.api_version})", "",
             "| method | HTTP route |", "|---|---|"]
    for fn in ref.functions:
        lines.append(f"| {_call(fn)} | {fn.method.upper()} `{fn.route}` |")
    return lines + [""]


def _exchanges(ref: ExchangesReference) -> list[str]:
    lines = [f"#### `tclisten.{ref.class_name}` (`{ref.exchange_prefix}`)", "",
             "| exchange | routing key |", "|---|---|"]
    for ex in ref.exchanges:
        words = ".".join(w.constant if w.constant else (f"<{w.name}...>" if w.multiple_words else f"<{w.name}>")
                         for w in ex.routing_key)
        lines.append(f"| `{ex.name}` (`{ex.exchange}`) | `{words}` |")
    return lines + [""]


def reference_markdown() -> str:
    """Markdown listing every bundled REST method and exchange."""
    refs = bundled()
    apis = [r for r in refs.values() if isinstance(r, APIReference)]
    exchanges = [r for r in refs.values() if isinstance(r, ExchangesReference)]
    lines = ["### REST clients", ""]
    for api in sorted(apis, key=lambda r: r.class_name):
        lines += _api(api)
    lines += ["### Exchanges", ""]
    for topics in sorted(exchanges, key=lambda r: r.class_name):
        lines += _exchanges(topics)
    return "\n".join(lines).rstrip() + "\n"


def update_readme(path: str | Path) -> bool:
    """Rewrite the generated section of ``path``; True when it changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise ValueError(f"{path}: the markers {BEGIN!r} and {END!r} are missing")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{reference_markdown()}{END}{tail}"
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":  # pragma: no cover - a maintainer's command
    for target in sys.argv[1:] or ["README.md"]:
        print(f"{target}: {'updated' if update_readme(target) else 'up to date'}")
