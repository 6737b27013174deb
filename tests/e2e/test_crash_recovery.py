"""Crash at any point: SIGKILL each of sft, reward, baseline, align (ppo), evaluate and register at a random
moment; rerun it.

While it lies dead, every output is the previous complete one or the new complete one; the rerun (training
resumes from its newest complete checkpoint) ends where an uninterrupted run ends: the same files, weights equal
within 1e-5, the same metrics, and a registry with exactly one fully tagged version per model.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from alignflow.io import KILL_POINT_ENV
from alignflow.progress import PREFIX as PROGRESS
from tests.project import copy_project, project_env

pytestmark = pytest.mark.slow
SEED = 20261201
KILL_SEEDS = (SEED, SEED + 1)
ORDER = ["sft", "reward", "baseline", "align", "evaluate", "register"]
TRAINING = {"sft": ["sft"], "reward": ["reward", "judge"], "align": ["ppo"]}
"""Training stages and their checkpoint folders under checkpoints/."""
CHECKPOINT_MARKERS = ("trainer_state.json", "state.json")
PREVIOUS = "PREVIOUS-OUTPUT"
TIMED_KEYS = ("runtime", "per_second", "seconds", "wall", "curve_share")
"""Metric names that carry wall time (or a ratio of wall times), the one thing two runs of a stage may not share."""


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_pipeline):
    """A copy of the session's tiny pipeline run, with every stage's inputs there (each test runs its stage again)
    and an empty MLflow store, so that the register test starts with no version."""
    project = copy_project(tiny_pipeline.path, tmp_path_factory.mktemp("crash") / "project")
    (project / "mlflow.db").unlink()
    shutil.rmtree(project / "mlruns", ignore_errors=True)
    return project


def ensure_upstream(project: Path, stage: str, env: dict[str, str]) -> None:
    """Run the stages before `stage` whose outputs are missing (when a test is selected on its own)."""
    for earlier in ORDER[: ORDER.index(stage)]:
        if not all(path.exists() for path in stage_outputs(project, earlier)):
            uninterrupted(project, earlier, env)


def stage_outputs(project: Path, stage: str) -> list[Path]:
    spec = yaml.safe_load((project / "dvc.yaml").read_text())["stages"][stage]
    declared = [next(iter(o)) if isinstance(o, dict) else o for kind in ("outs", "metrics") for o in spec.get(kind, [])]
    return [project / path for path in declared]


def complete_checkpoints(project: Path, stage: str) -> set[Path]:
    return {
        folder
        for name in TRAINING.get(stage, [])
        for folder in (project / "checkpoints" / name).glob("checkpoint-*")
        if any((folder / marker).is_file() for marker in CHECKPOINT_MARKERS)
    }


class Marks:
    """How far a running stage got, by what it wrote: the complete checkpoints it saved (training stages; a set,
    as the stage removes old ones), else the progress lines in its log."""

    def __init__(self, project: Path, stage: str):
        self.project, self.stage, self.checkpoints = project, stage, set()

    def count(self) -> int:
        if self.stage in TRAINING:
            self.checkpoints |= complete_checkpoints(self.project, self.stage)
            return len(self.checkpoints)
        text = (self.project / f"{self.stage}.log").read_text(errors="replace")
        return sum(line.startswith(PROGRESS) for line in text.splitlines())


def start(project: Path, stage: str, env: dict[str, str]) -> subprocess.Popen:
    """The stage in a subprocess writing to `<project>/<stage>.log` (a file: a full pipe would stall it)."""
    with (project / f"{stage}.log").open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", f"alignflow.stages.{stage}"], cwd=project, env=env, stdout=log, stderr=log
        )


def uninterrupted(project: Path, stage: str, env: dict[str, str]) -> tuple[list[float], str]:
    """Run the stage to the end: (seconds from its start at which each new mark appeared, its output)."""
    began, marks, appeared = time.monotonic(), Marks(project, stage), []
    process = start(project, stage, env)
    while process.poll() is None:
        appeared += [time.monotonic() - began] * (marks.count() - len(appeared))
        time.sleep(0.02)
    output = (project / f"{stage}.log").read_text()
    assert process.returncode == 0, f"{stage} failed:\n{output[-3000:]}"
    return appeared, output


def killed(project: Path, stage: str, env: dict[str, str], after: int, delay: float) -> None:
    """Start the stage and SIGKILL it `delay` seconds after its `after`-th mark (0: its start), or at its next mark
    if that comes first: wherever the machine's load puts the marks, the kill lands between the two."""
    process, marks = start(project, stage, env), Marks(project, stage)
    while marks.count() < after:
        assert process.poll() is None, f"{stage} ended before its mark {after}:\n{log(project, stage)}"
        time.sleep(0.005)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and marks.count() <= after:
        time.sleep(0.005)
    assert process.poll() is None, f"{stage} finished before the kill, {delay:.2f}s after mark {after}"
    process.send_signal(signal.SIGKILL)
    process.wait()


def log(project: Path, stage: str) -> str:
    return (project / f"{stage}.log").read_text()[-3000:]


def snapshot(paths: list[Path]) -> dict[str, bytes]:
    files = {}
    for path in paths:
        for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
            files[str(file)] = file.read_bytes()
    return files


def mark_previous(paths: list[Path]) -> None:
    """Make the previous outputs tell themselves apart from a rerun's (same seed, so otherwise identical)."""
    for path in paths:
        if path.is_dir():
            (path / PREVIOUS).write_text("from the run before the kill")


def assert_previous_or_new(paths: list[Path], previous: dict[str, bytes], new: dict[str, bytes]) -> None:
    for path in paths:
        now = snapshot([path])
        marker = str(path / PREVIOUS)
        if marker in now:
            before = {k: v for k, v in previous.items() if k.startswith(str(path))}
            assert now == before, f"{path}: the previous output was changed by the killed run"
        else:
            assert_same_outputs(now, {k: v for k, v in new.items() if k.startswith(str(path))})


def assert_same_outputs(got: dict[str, bytes], expected: dict[str, bytes]) -> None:
    assert sorted(got) == sorted(expected)
    for name, content in expected.items():
        if name.endswith(".safetensors"):
            from safetensors.torch import load

            mine, theirs = load(got[name]), load(content)
            assert mine.keys() == theirs.keys()
            for key in theirs:
                assert torch.allclose(mine[key].float(), theirs[key].float(), atol=1e-5), f"{name}: {key} differs"
        elif name.endswith(".json") and (name.split("/")[-2] == "metrics" or name.endswith("_stats.json")):
            # Numbers computed from the weights: a resumed run sums in another order, so they match as closely as
            # the weights do, not bit for bit.
            mine, theirs = json.loads(got[name]), json.loads(content)
            if isinstance(theirs, dict):
                mine, theirs = untimed(mine), pytest.approx(untimed(theirs), rel=1e-5, abs=1e-7)
            assert mine == theirs, name
        elif not name.endswith(".png"):  # figures embed nothing but pixels of the same numbers
            assert got[name] == content, f"{name} differs"


def untimed(metrics: dict) -> dict:
    return {
        k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not any(word in k for word in TIMED_KEYS)
    }


@pytest.mark.parametrize("stage", ["sft", "reward", "baseline", "align", "evaluate"])
def test_a_stage_killed_at_a_random_moment_leaves_whole_outputs_and_its_rerun_matches(project, stage):
    """Two kills, each at a moment drawn from its own seed, each followed by a rerun that must match. A moment is a
    drawn mark of the stage (a checkpoint; for the other stages a progress line or the start) plus a drawn part of
    the time to its next mark, so it falls inside the stage's work and never after its last mark."""
    env = project_env(project)
    ensure_upstream(project, stage, env)
    outputs = stage_outputs(project, stage)
    appeared, first = uninterrupted(project, stage, env)
    assert "resuming from" not in first
    # training stages: from the first checkpoint on, so there is always one to resume from
    marks = appeared if stage in TRAINING else [0.0, *appeared]
    assert len(marks) >= 2, f"{stage} wrote {len(appeared)} mark(s); the test needs two"
    reference = snapshot(outputs)
    for seed in KILL_SEEDS:
        rng = random.Random(f"{seed}-{stage}")
        mark_previous(outputs)
        previous = snapshot(outputs)
        index = rng.randrange(len(marks) - 1)
        after = index + 1 if stage in TRAINING else index
        killed(project, stage, env, after, rng.uniform(0, 1) * (marks[index + 1] - marks[index]))
        if stage in TRAINING:
            assert complete_checkpoints(project, stage)  # what the rerun resumes from
        assert_previous_or_new(outputs, previous, reference)
        _, rerun = uninterrupted(project, stage, env)
        if stage in TRAINING:  # it resumed, from a checkpoint past step 0 (a retrain from scratch would match too)
            assert re.search(r"resuming from \S*checkpoints/\S+/checkpoint-[1-9]", rerun), rerun[-3000:]
        assert_same_outputs(snapshot(outputs), reference)
        assert not any((project / "checkpoints" / name).exists() for name in TRAINING.get(stage, []))


def test_a_stage_killed_between_setting_its_old_output_aside_and_moving_the_new_one_in_recovers(project):
    """The narrowest window of the final write, hit on purpose (a timed kill cannot aim at it): the old output
    waits beside the target, and the rerun puts it back before it replaces it."""
    env = project_env(project)
    ensure_upstream(project, "sft", env)
    uninterrupted(project, "sft", env)
    target = project / "models/sft"
    reference = snapshot([target])
    mark_previous([target])
    previous = {name.replace(str(target), ""): content for name, content in snapshot([target]).items()}
    died = subprocess.run(
        [sys.executable, "-m", "alignflow.stages.sft"], cwd=project, env={**env, KILL_POINT_ENV: "replace"}
    )
    assert died.returncode == -signal.SIGKILL and not target.exists()
    aside = target.with_name(".sft.old")
    assert {name.replace(str(aside), ""): content for name, content in snapshot([aside]).items()} == previous
    uninterrupted(project, "sft", env)
    assert_same_outputs(snapshot([target]), reference)
    assert not aside.exists()


def test_register_killed_at_a_random_moment_leaves_no_half_registered_version(project):
    import mlflow

    env, rng = project_env(project), random.Random(f"{SEED}-register")
    ensure_upstream(project, "register", env)
    reference_env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'reference.db'}"}
    appeared, _ = uninterrupted(project, "register", reference_env)
    expected = json.loads((project / "metrics" / "register.json").read_text())
    (project / "metrics" / "register.json").unlink()

    marks = [0.0, *appeared]
    index = rng.randrange(len(marks) - 1)
    killed(project, "register", env, index, rng.uniform(0, 1) * (marks[index + 1] - marks[index]))
    uninterrupted(project, "register", env)
    result = json.loads((project / "metrics" / "register.json").read_text())
    assert {k: result[k] for k in ("version", "promoted", "reason")} == {
        k: expected[k] for k in ("version", "promoted", "reason")
    }

    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    params = yaml.safe_load((project / "params.yaml").read_text())["register"]
    for name in (params["model_name"], params["reward_model_name"]):
        (version,) = client.search_model_versions(f"name='{name}'")  # a rerun never registers a duplicate
        assert version.description and version.tags["alignflow.candidate"]
        assert {"lineage.git_commit", "lineage.params_hash"} <= set(version.tags)
    policy = client.get_model_version(params["model_name"], "1")
    assert policy.tags[f"gate.{params['alias']}.decision"] == ("promoted" if result["promoted"] else "rejected")
    assert (params["alias"] in client.get_registered_model(params["model_name"]).aliases) == result["promoted"]
