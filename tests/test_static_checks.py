"""The linters CI runs with the tests: ruff on everything, mypy on the typed joins (the access
rules, the index and the read facade: pyproject's [tool.mypy] files)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

TREES = ["memex", "connectors", "tests", "benchmarks"]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff") or pytest.fail("ruff is missing: pip install -e '.[test]'")
    result = _run(ruff, "check", *TREES)
    assert result.returncode == 0, result.stdout + result.stderr
    result = _run(ruff, "format", "--check", *TREES)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_is_clean_on_the_typed_joins():
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout
