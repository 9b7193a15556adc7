"""Our packages are ours: `schema` in particular is also a PyPI package name."""

import importlib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [
    "labelpulse",
    "config",
    "kafka_admin",
    "access",
    "schema",
    "streams",
    "dashboard",
    "alerts",
    "embedded_clickhouse",
    "ingest",
    "api",
]


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


def test_the_built_wheel_holds_every_module_and_data_file_and_builds_quietly(tmp_path: Path) -> None:
    """What a non-editable install (the Docker image) gets: every file of our packages."""
    import shutil
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "source"  # setuptools writes build/ next to pyproject.toml: not into the repository
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v", "-w", str(tmp_path), "."],
        cwd=source,
        check=True,
        capture_output=True,
        text=True,
    )
    # Data directories left out of `packages` install all the same, with a page of warning each.
    assert "Warning" not in built.stderr + built.stdout, "the build warns: declare packages and package data"
    (wheel,) = tmp_path.glob("labelpulse-*.whl")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    ours = {
        str(path.relative_to(REPO_ROOT))
        for package in PACKAGES
        for path in (REPO_ROOT / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert ours <= in_wheel, f"left out of the wheel: {sorted(ours - in_wheel)}"


def test_the_image_copies_every_package() -> None:
    """The Dockerfile lists packages one by one too (dependencies first, code after)."""
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    for package in PACKAGES:
        assert f"COPY {package}/__init__.py {package}/\n" in dockerfile, package
        assert f"COPY {package} {package}\n" in dockerfile, package


# What each package may import of ours: dependencies point one way, down to `config`. Components
# never import each other or the command line; `labelpulse` (command line, local runtime) is the top.
MAY_IMPORT = {
    "config": set(),
    "schema": {"config"},
    "kafka_admin": {"config"},
    "access": {"config", "schema"},
    "streams": {"config", "schema", "kafka_admin"},
    "alerts": {"config", "schema"},
    "dashboard": {"config", "schema", "kafka_admin", "access"},
    "embedded_clickhouse": {"config", "schema", "access"},
    "ingest": {"config", "schema", "kafka_admin"},
    "api": {"config", "schema", "access"},
    "labelpulse": set(PACKAGES) - {"labelpulse"},
}


def run_time_imports() -> dict[str, set[str]]:
    """Per module of ours, the modules of ours it imports when it runs (at any depth of the file;
    not those under `if TYPE_CHECKING:`)."""
    import ast

    modules = {
        ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for package in PACKAGES
        for path in (REPO_ROOT / package).rglob("*.py")
    }
    imports: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for block in [node for node in ast.walk(tree) if isinstance(node, ast.If)]:
            if ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                block.body = []
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from package import module` needs that module (a package comes with every module of it).
                found |= {
                    f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                    for alias in node.names
                }
        imports[name] = {module for module in found if module in modules and module != name}
    return imports


def test_packages_import_only_the_packages_below_them() -> None:
    wrong = sorted(
        f"{module} imports {imported}"
        for module, imported_modules in run_time_imports().items()
        for imported in imported_modules
        if (target := imported.split(".")[0]) != module.split(".")[0] and target not in MAY_IMPORT[module.split(".")[0]]
    )
    assert not wrong, wrong


def test_no_modules_import_each_other_in_a_cycle() -> None:
    imports = run_time_imports()
    done: set[str] = set()

    def cycle_from(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for imported in sorted(imports[module]):
            if found := cycle_from(imported, [*path, module]):
                return found
        done.add(module)
        return None

    for module in sorted(imports):
        assert (cycle := cycle_from(module, [])) is None, " -> ".join(cycle)
