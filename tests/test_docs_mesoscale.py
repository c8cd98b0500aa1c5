"""The worked examples of docs/dpd.md and docs/coarse_graining.md run and check their own numbers
(the water example of the latter is the water-cg ladder's, run by its tests)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest


@pytest.mark.parametrize("name", ["dpd.md", "coarse_graining.md"])
def test_the_docs_examples_run(name):
    doc = (Path(__file__).resolve().parents[1] / "docs" / name).read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, f"docs/{name}", "exec"), {})  # noqa: S102 - our own docs
