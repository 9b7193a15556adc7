"""Our packages are ours: `schema` in particular is also a PyPI package name."""

import importlib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["labelpulse", "schema", "streams", "dashboard", "alerts"]


@pytest.mark.parametrize("package", PACKAGES)
def test_package_resolves_inside_the_repository(package: str) -> None:
    module = importlib.import_module(package)
    location = Path(module.__file__ or "").resolve()
    assert location.is_relative_to(REPO_ROOT), f"{package} was imported from {location}, not from {REPO_ROOT}"
    assert location.parent == REPO_ROOT / package


def test_pyproject_lists_every_package_explicitly() -> None:
    import tomllib

    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    assert set(PACKAGES) <= listed
    on_disk = {str(p.parent.relative_to(REPO_ROOT)).replace("/", ".") for p in REPO_ROOT.glob("*/**/__init__.py")}
    on_disk = {name for name in on_disk if name.split(".")[0] in PACKAGES}
    assert on_disk <= listed, f"packages missing from pyproject.toml: {sorted(on_disk - listed)}"
