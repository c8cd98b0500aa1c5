"""The worked example of docs/homogenisation.md runs and checks its own numbers."""
from __future__ import annotations

import re
from pathlib import Path


def test_the_homogenisation_docs_example_runs():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "homogenisation.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "docs/homogenisation.md", "exec"), {})  # noqa: S102 - our own docs
