"""The README's promises: its two commands, and CI running exactly the test command."""

from __future__ import annotations

import re

from support.env import ROOT


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_two_commands():
    install_and_run, run_tests = readme_commands()
    assert "pip install ." in install_and_run
    assert "tclisten demo" in install_and_run
    assert "pytest" in run_tests


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_readme_rest_quick_start_runs():
    """A new user's path: a Hawk-signed call, a signed URL, temporary credentials."""
    block = next(b for b in python_blocks() if "buildSignedUrl" in b)
    exec(compile(block, "README.md", "exec"), {})


def test_readme_exchange_examples_run():
    block = next(b for b in python_blocks() if "QueueEvents().taskCompleted" in b)
    exec(compile(block, "README.md", "exec"), {})


def test_readme_listener_example_declares_what_it_says():
    block = next(b for b in python_blocks() if "app.run()" in b)
    namespace: dict = {}
    exec(compile(block.replace("app.run()", ""), "README.md", "exec"), namespace)
    [binding] = namespace["app"].bindings
    assert binding.pattern in (ROOT / "README.md").read_text()


def test_generated_reference_matches_the_bundled_references():
    from tclisten.taskcluster.docs import BEGIN, END, reference_markdown

    text = (ROOT / "README.md").read_text()
    section = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert section == "\n" + reference_markdown(), "run: python -m tclisten.taskcluster.docs README.md"


def test_readme_test_kit_example_runs():
    block = next(b for b in python_blocks() if "ListenerTestKit" in b)
    exec(compile(block, "README.md", "exec"), {})


def test_readme_yaml_example_is_the_shipped_example():
    import yaml

    text = (ROOT / "README.md").read_text()
    shown = yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))
    shipped = yaml.safe_load((ROOT / "examples" / "listener.yaml").read_text())
    assert shown["bindings"] == shipped["bindings"]
    assert shown["name"] == shipped["name"]
