"""The worker's per-event code compiled to C with mypyc, used when a build for the sources as they are exists.

streams.processor and streams.task_state run for every event and take most of the worker's CPU. mypyc
(part of mypy, which compiles mypy and black the same way) compiles them from the type hints they
already carry, unchanged: the processor then takes ~25 % less CPU an event, the worker ~6-15 % (bench/RESULTS.md).

A build is kept under the interpreter's prefix (the virtualenv), keyed by a fingerprint of the
`schema` and `streams` sources and the interpreter. So an edited source never runs as an old build:
until a build for it exists, the modules run interpreted, as they read. `./dev install` (and so
`./dev up` and `./dev test`) builds one when needed; so does `labelpulse compile`.
LABELPULSE_COMPILED=0 runs the interpreted modules anyway (a debugger or a line profiler needs them).

Only modules without msgspec Structs: compiled with streams.activity, msgspec decoded its Struct without the
field types (`floors` came back with string keys, tried), which the interpreted module never sees.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from config.env import PREFIX, env_bool

COMPILED = ("streams.task_state", "streams.processor")
# What the compiled modules are built from and against (mypyc reads the types of what they import).
PACKAGES = ("schema", "streams")
ROOT = Path(__file__).resolve().parents[1]  # where the packages are: the checkout, or site-packages
BUILDS = Path(sys.prefix) / "labelpulse-compiled"
KEPT_BUILDS = 3  # older ones (of earlier sources) are removed when a new one is made
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
RUNTIME = "__mypyc"  # mypyc's shared library for a group of modules is a top-level module `<hash>__mypyc`
SWITCH = "LABELPULSE_COMPILED"


def sources() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def build_dir() -> Path:
    """Where the build for the sources as they are is (or would be)."""
    return BUILDS / fingerprint()


def fingerprint() -> str:
    digest = hashlib.sha256(f"{sys.implementation.cache_tag} {SUFFIX}".encode())
    for path in sources():
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


class CompiledFinder(importlib.abc.MetaPathFinder):
    """Finds the compiled modules (and mypyc's runtime for them) in one build."""

    def __init__(self, build: Path) -> None:
        self.build = build

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in COMPILED and not ("." not in fullname and fullname.endswith(RUNTIME)):
            return None
        library = self.build / (fullname.replace(".", "/") + SUFFIX)
        return importlib.util.spec_from_file_location(fullname, library) if library.is_file() else None


def install() -> None:
    """Serve the compiled modules from the build for the sources as they are, if there is one (idempotent;
    streams/__init__.py calls it, so before any of them is imported)."""
    if switched_off() or any(isinstance(finder, CompiledFinder) for finder in sys.meta_path):
        return
    if (build := build_dir()).is_dir():
        sys.meta_path.insert(0, CompiledFinder(build))


def running_compiled() -> bool:
    return all(str(getattr(sys.modules.get(name), "__file__", "")).endswith(SUFFIX) for name in COMPILED)


def switched_off() -> bool:
    """LABELPULSE_COMPILED set to false (0, no, off): ConfigError for a value that is neither."""
    return not env_bool(os.environ, SWITCH.removeprefix(PREFIX), True)


def status() -> str:
    """Whether the per-event modules run compiled, and if not why: for the worker's start-up log."""
    if running_compiled():
        return "compiled (mypyc)"
    if switched_off():
        return f"interpreted ({SWITCH}={os.environ[SWITCH]})"
    return "interpreted: no build for these sources yet (`./dev install` or `labelpulse compile` makes one)"


def compiler_missing() -> str | None:
    """Why no C extension can be built here, or None."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler}; on Debian or Ubuntu: sudo apt-get install -y gcc)"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        return "no Python headers (Python.h; on Debian or Ubuntu: sudo apt-get install -y python3-dev)"
    return None


# Run in a copy of the packages: mypyc's setuptools build writes the extensions next to their sources.
BUILD_SCRIPT = """
import sys
from setuptools import setup
from mypyc.build import mypycify
setup(
    name="labelpulse-compiled",
    ext_modules=mypycify(["--ignore-missing-imports", *sys.argv[1:]], opt_level="3"),
    script_args=["build_ext", "--inplace"],
)
"""


def build() -> Path:
    """Build the compiled modules for the sources as they are, unless that build exists; its directory.
    Raises BuildError with the reason (and the compiler's output) when it cannot."""
    target = build_dir()
    if target.is_dir():
        return target
    if reason := compiler_missing():
        raise BuildError(reason)
    try:
        BUILDS.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"cannot keep a build in {BUILDS}: {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="labelpulse-compile-") as work:
        copy = Path(work) / "src"
        for package in PACKAGES:
            shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
        paths = [str(Path(*name.split(".")).with_suffix(".py")) for name in COMPILED]
        done = subprocess.run(
            [sys.executable, "-c", BUILD_SCRIPT, *paths], cwd=copy, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise BuildError(f"mypyc failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}")
        staged = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=BUILDS))
        staged.chmod(0o755)  # built by root in an image, read by the service's user
        libraries = [name.replace(".", "/") + SUFFIX for name in COMPILED]
        for library in libraries + [path.name for path in copy.glob(f"*{RUNTIME}{SUFFIX}")]:
            (staged / library).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(copy / library, staged / library)
    try:
        staged.rename(target)  # whole or not at all: an interrupted build leaves no half of one
    except OSError:  # made meanwhile by another build of the same sources
        shutil.rmtree(staged, ignore_errors=True)
    builds = [path for path in BUILDS.iterdir() if path.is_dir() and not path.name.startswith(".")]
    for old in sorted(builds, key=lambda path: path.stat().st_mtime)[:-KEPT_BUILDS]:
        shutil.rmtree(old, ignore_errors=True)
    return target


class BuildError(Exception):
    pass
