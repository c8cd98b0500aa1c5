"""The README's Python example runs as written (examples are tests)."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    for code in blocks:
        namespace: dict = {}
        exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - our own README


def test_readme_opens_with_the_two_commands():
    text = README.read_text()
    head = text[: text.index("## What the flagship does")]
    assert "scaleladder run silicon-fracture" in head
    ci = (README.parent / ".ci" / "run").read_text()
    test_cmd = [ln for ln in head.splitlines() if "pytest" in ln][0].split("#")[0].strip()
    assert test_cmd in ci, "the README's test command and .ci/run must agree"
