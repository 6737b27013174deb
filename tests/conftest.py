"""Shared fixtures: a tiny causal LM and tokenizer trained in-process on a few KB of text, and the tiny pipeline
run once per test run through the Prefect flow, which end-to-end modules copy instead of running it again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")  # slow to start on 2 busy cores
if os.environ.get("PYTEST_XDIST_WORKER"):  # pyproject's addopts run two workers, each with its own modules
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # so two workers on two cores do not fight over them


def _interrupt(signum: int, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# A terminated test run (a CI time limit, a supervisor) unwinds like Ctrl-C, so the `finally` blocks and fixture
# teardowns that stop the servers, workers and flows the tests started still run instead of leaving them orphaned.
signal.signal(signal.SIGTERM, _interrupt)

CORPUS = [
    "How do I keep basil fresh? Put the stems in a glass of water on the counter.",
    "Why is the sky blue? Air scatters short blue wavelengths of sunlight more than red ones.",
    "What is a good way to learn vocabulary? Review new words a little every day with spaced repetition.",
    "My bike chain squeaks. Clean it, let it dry, and apply a drop of chain oil to each link.",
] * 20


@pytest.fixture(scope="session")
def tiny_lm():
    from alignflow.models.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(CORPUS, seed=0)


MACHINE_SKIP = "machine:"
"""How a skip reason starts when the hardware, not a missing program or service, makes the test moot."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true, a test skipped for a missing program or service fails: CI installs them all, so a skip there
    would hide a failure. Skips that depend on the machine's hardware (reason `machine: ...`) stay skips."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        if not reason.startswith(MACHINE_SKIP) and not hasattr(report, "wasxfail"):
            report.outcome, report.longrepr = "failed", f"skipped under CI=true, where it must run: {reason}"


E2E_ORDER = (
    "test_foundation_pipeline",
    "test_ray_scale_out",
    "test_crash_recovery",
    "test_soak",
    "test_offline_run",
    "test_production_stack",
    "test_verifiers_pipeline",
)
"""End-to-end modules, longest first as measured (others follow them). The first builds the tiny-pipeline template."""


def pytest_collection_modifyitems(config, items):
    """The order in which pytest-xdist hands whole modules to its two workers (`--no-loadscope-reorder`): the first
    end-to-end module, whose worker builds the template; the unit and integration modules, which the other worker
    runs meanwhile instead of waiting for the template; then the other end-to-end modules, longest first, so that
    no long one starts last."""

    def rank(item) -> tuple[int, int]:
        module = item.path.stem
        if "e2e" not in item.path.parts:
            return (1, 0)
        position = E2E_ORDER.index(module) if module in E2E_ORDER else len(E2E_ORDER)
        return (0 if position == 0 else 2, position)

    items.sort(key=rank)  # stable: tests keep their order within a module


@dataclass(frozen=True)
class BuiltProject:
    path: Path
    flow: subprocess.CompletedProcess
    """The `alignflow run` that built it (its stdout names what ran)."""


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> BuiltProject:
    """The tiny profile, run once to a registered version; use it through `tests.project.copy_project`.

    Once per test run, also when pytest-xdist spreads the modules over several workers: the first worker to ask
    builds it in the folder the workers share, under a file lock; the others wait for it and reuse it."""
    from filelock import FileLock

    from tests.project import make_project, run

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # each worker's base folder lies in the run's one
    folder, record = shared / "tiny_pipeline", shared / "tiny_pipeline.stdout"
    with FileLock(str(shared / "tiny_pipeline.lock")):
        if not record.is_file():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed part-way
            flow = run(["alignflow", "run"], make_project(folder / "project"))
            record.write_text(flow.stdout)
    project = folder / "project"
    return BuiltProject(project, subprocess.CompletedProcess(["alignflow", "run"], 0, record.read_text(), ""))
