"""The worker's per-event modules compiled with mypyc: used for the sources they were built from, and only those."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from streams import compiled

REPORT = "import streams.processor, streams.task_state, streams.compiled as c; print(c.status())"
# What the processor makes of a disordered, duplicated stream with replays (every table, count and release), as JSON;
# each table's rows sorted: derived rows come out of sets, in an order of the process's string hashes.
PROCESS = """
import json, zlib
from datetime import UTC, datetime, timedelta
from itertools import islice
from labelpulse.simulator import Delivery, Plan, generate
from streams import compiled
from streams.processor import DictStateStore, Message, Processor
plan = Plan(seed=3, start=datetime(2026, 11, 30, 8, tzinfo=UTC), rate=5)
delivered = islice(Delivery(180, 0.05, seed=3).order(generate(plan)), 20_000)
messages = [Message("events", zlib.crc32(m.key) % 3, n, m.key, m.value) for n, (_, m) in enumerate(delivered)]
processor, now, out = Processor(tasks=DictStateStore(), lateness_bound_ms=600_000), plan.start + timedelta(days=1), []
for start in range(0, len(messages), 2_000):  # each batch reads the last 500 of the one before again
    replayed = {partition: start - 1 for partition in range(3)}
    batch = processor.process(messages[max(start - 500, 0) : start + 2_000], now=now, replayed_through=replayed)
    tables = {table: sorted(map(repr, rows)) for table, rows in batch.tables.items()}
    out.append([tables, batch.events_by_type, batch.too_late, batch.duplicates, batch.released, batch.activity])
print(compiled.status())
print(json.dumps(out, sort_keys=True, default=str))
"""


def python(*args: str, checkout: Path = compiled.ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    """Python in `checkout` (`-c` and `-m` import from the working directory first)."""
    return subprocess.run(
        [sys.executable, *args], cwd=checkout, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def built() -> Path:
    return compiled.build()  # nothing to do when `./dev install` built it, ~15 s otherwise


def edited_copy(tmp_path: Path) -> Path:
    """`schema` and `streams` as a checkout after an edit (the other packages come from ours)."""
    for package in compiled.PACKAGES:
        shutil.copytree(compiled.ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    task_state = tmp_path / "streams" / "task_state.py"
    task_state.write_text(task_state.read_text() + "\n# edited\n")
    return tmp_path


def test_a_fresh_interpreter_runs_the_compiled_modules_of_the_build(built: Path) -> None:
    assert compiled.build_dir() == built and built.is_dir()
    ran = python("-c", REPORT + "; print(streams.processor.__file__); print(streams.task_state.__file__)")
    assert ran.returncode == 0, ran.stderr
    status, processor, task_state = ran.stdout.splitlines()
    assert status == "compiled (mypyc)"
    assert Path(processor).parent == built / "streams" and Path(task_state).parent == built / "streams"


def test_the_switch_runs_them_interpreted(built: Path) -> None:
    ran = python("-c", REPORT + "; print(streams.processor.__file__)", LABELPULSE_COMPILED="0")
    assert ran.stdout.splitlines() == [
        "interpreted (LABELPULSE_COMPILED=0)",
        str(compiled.ROOT / "streams" / "processor.py"),
    ]


def test_an_edited_source_runs_interpreted_never_as_the_old_build(built: Path, tmp_path: Path) -> None:
    checkout = edited_copy(tmp_path)
    ran = python("-c", REPORT + "; print(streams.task_state.__file__)", checkout=checkout)
    assert ran.returncode == 0, ran.stderr
    status, task_state = ran.stdout.splitlines()
    assert status.startswith("interpreted: no build for these sources yet")
    assert task_state == str(checkout / "streams" / "task_state.py")


def test_without_a_compiler_compile_says_why_and_the_modules_run_interpreted(tmp_path: Path) -> None:
    checkout = edited_copy(tmp_path)  # sources no build exists for
    ran = python("-m", "labelpulse", "compile", checkout=checkout, PATH=str(tmp_path / "empty"))
    assert ran.returncode == 2
    assert "not compiled, the worker runs interpreted" in ran.stderr and "no C compiler" in ran.stderr
    assert python("-c", REPORT, checkout=checkout).stdout.startswith("interpreted")


def test_compile_is_quick_once_built(built: Path) -> None:
    ran = python("-m", "labelpulse", "compile")
    assert ran.stdout == f"the worker's per-event code is compiled for these sources ({built})\n"


def test_compiled_and_interpreted_make_the_same_rows_of_the_same_stream(built: Path) -> None:
    """mypyc checks types at run time and binds names early: what the interpreted modules make is the reference."""
    compiled_run, interpreted_run = python("-c", PROCESS), python("-c", PROCESS, LABELPULSE_COMPILED="0")
    assert compiled_run.returncode == 0 and interpreted_run.returncode == 0, (
        compiled_run.stderr + interpreted_run.stderr
    )
    (compiled_status, compiled_out), (interpreted_status, interpreted_out) = (
        compiled_run.stdout.splitlines(),
        interpreted_run.stdout.splitlines(),
    )
    assert (compiled_status, interpreted_status) == ("compiled (mypyc)", "interpreted (LABELPULSE_COMPILED=0)")
    assert len(compiled_out) > 1_000_000  # every table of 20,000 events
    assert compiled_out == interpreted_out
