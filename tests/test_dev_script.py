"""`./dev`, the README's entry point: `./dev test` names the system tools the tests need before anything else."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.services import REPO_ROOT

SHELL_TOOLS = ("bash", "dirname", "sort", "tr")  # what ./dev runs before it installs anything


def path_with(tmp_path: Path, *tools: str) -> str:
    """A PATH holding the shell tools ./dev uses and stand-ins for `tools`, nothing else."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in SHELL_TOOLS:
        (bin_dir / name).symlink_to(shutil.which(name) or pytest.fail(f"no {name}"))
    for name in tools:
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    return str(bin_dir)


def dev(*args: str, path: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "PATH"} | {"PATH": path}
    return subprocess.run(
        ["bash", str(REPO_ROOT / "dev"), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_dev_test_refuses_to_start_without_the_system_tools_and_says_how_to_get_them(tmp_path: Path) -> None:
    result = dev("test", "-k", "nothing", path=path_with(tmp_path, "promtool", "prometheus"))
    assert result.returncode == 1
    assert "missing: chromium prometheus-alertmanager" in result.stderr
    assert "  sudo apt-get install -y chromium prometheus-alertmanager\n" in result.stderr
    assert "installing" not in result.stdout and "ruff" not in result.stdout, "it stops before anything else"


@pytest.mark.parametrize("browser", ["chromium", "chromium-browser"])
def test_nothing_is_missing_when_every_tool_is_on_the_path(tmp_path: Path, browser: str) -> None:
    tools = (browser, "promtool", "prometheus", "amtool", "prometheus-alertmanager")
    result = dev("missing-system-packages", path=path_with(tmp_path, *tools))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_each_missing_package_is_named_once(tmp_path: Path) -> None:
    result = dev("missing-system-packages", path=path_with(tmp_path, "chromium"))
    assert result.stdout.split() == ["prometheus", "prometheus-alertmanager"]
