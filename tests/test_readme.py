"""The README's two set-up commands stay true: .ci/run runs exactly the README's test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _commands():
    return re.findall(r"```\n(.+?)\n```", (ROOT / "README.md").read_text().split("## Command line")[0])


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    app, tests = _commands()
    assert app.endswith("streamlit run app.py")
    assert tests.endswith("python -m pytest")
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    assert tests in ci_lines
