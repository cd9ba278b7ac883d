"""A non-editable install (README command 1) must carry every package and the bundled policies."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from tests.conftest import ROOT


def test_the_wheel_carries_every_module_and_policy(tmp_path):
    source = tmp_path / "source"  # a clean copy: no stale build/ folder to hide a missing package
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__", ".memex-demo"),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("memex-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        path.relative_to(ROOT).as_posix()
        for folder in ("memex", "connectors")
        for path in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "policies").glob("*.yaml")}
    assert expected - names == set()
