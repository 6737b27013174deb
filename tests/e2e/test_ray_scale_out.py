"""The tiny pipeline with `compute.backend: ray` on a local Ray with 2 CPU workers: the flow registers a version, the
training stages match `accelerate launch` on 2 processes, a killed worker's group restarts and ends at the same
weights, and a cluster address that does not answer fails in one line before anything is written."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import psutil
import pytest
from safetensors.torch import load_file

from tests.project import copy_project, project_env, ran_stages, run
from tests.services import free_port

pytestmark = pytest.mark.slow
ON_RAY = ["--set", "compute.backend=ray", "--set", "compute.num_workers=2"]
WEIGHT_TOLERANCE = 1e-5
"""Ray Train and accelerate both all-reduce over gloo in the same order, so weights agree to float rounding."""


def weights(folder) -> dict:
    return load_file(str(folder / "model.safetensors"))


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@contextlib.contextmanager
def params_set(project, *assignments: str):
    """params.yaml with `assignments` applied for the block, then as before."""
    from alignflow.config import apply_overlay, parse_assignments

    original = (project / "params.yaml").read_text()
    apply_overlay(project / "params.yaml", parse_assignments(list(assignments)))
    try:
        yield
    finally:
        (project / "params.yaml").write_text(original)


def stage(project, name: str, launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    return run([*(launcher or [sys.executable]), "-m", f"alignflow.stages.{name}"], project)


ACCELERATE_2 = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
ACCELERATE_2 += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]


@dataclass(frozen=True)
class RayProject:
    path: Path
    flow: subprocess.CompletedProcess
    weights: dict[str, dict]
    """The SFT and PPO weights the flow trained on Ray, kept before any test overwrites them."""


@pytest.fixture(scope="module")
def ray_project(tmp_path_factory, tiny_pipeline) -> RayProject:
    """The session's tiny project with its flow run again on Ray: every stage the backend changes reruns there (the
    data stages before them are the same on any backend); its outputs are the reference of the tests below."""
    project = copy_project(tiny_pipeline.path, tmp_path_factory.mktemp("on_ray") / "project")
    flow = run(["alignflow", "run", *ON_RAY], project)
    folders = {"sft": "models/sft/model", "ppo": "models/policy"}
    return RayProject(project, flow, {name: weights(project / folder) for name, folder in folders.items()})


def test_the_flow_on_ray_registers_a_version(ray_project):
    project = ray_project.path
    assert ran_stages(ray_project.flow) == ["machine", "sft", "reward", "baseline", "align", "evaluate", "register"]
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    version = client.get_model_version("alignflow-policy", "2")  # version 1: the local run it was copied from
    assert version.tags["gate.staging.decision"] in ("promoted", "rejected")
    experiments = [e.experiment_id for e in client.search_experiments()]
    (align,) = client.search_runs(
        experiments, "attributes.run_name = 'align'", order_by=["attributes.start_time DESC"], max_results=1
    )
    assert align.data.metrics["kl"] is not None  # rank 0's per-update metrics reach the stage's run
    assert json.loads((project / "metrics/align.json").read_text())["updates"] == 4
    assert not [path for path in (project / "checkpoints").rglob("*") if path.is_file()]  # Ray's run folders too


def registered_checkpoint(storage) -> bool:
    """Ray has committed a checkpoint of the running align stage: every rank reported it and the controller wrote it
    into its snapshot. A folder in storage alone is not enough (it appears while the first rank uploads)."""
    for snapshot in storage.glob("alignflow-align-*/checkpoint_manager_snapshot.json"):
        with contextlib.suppress(ValueError, OSError):  # read while the controller rewrites it
            if json.loads(snapshot.read_text()).get("latest_checkpoint_result"):
                return True
    return False


def test_a_ray_worker_killed_mid_ppo_restarts_the_group_resumes_and_ends_at_the_same_weights(ray_project):
    project, uninterrupted = ray_project.path, ray_project.weights["ppo"]  # the flow's uninterrupted Ray run
    # it trains on the flow's SFT model: the accelerate tests below replace it, so this one runs before them
    assert max_difference(weights(project / "models/sft/model"), ray_project.weights["sft"]) == 0
    storage = project / "checkpoints" / "ray"
    env = project_env(project)
    process = subprocess.Popen(
        [sys.executable, "-m", "alignflow.stages.align"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    killed = None
    deadline = time.monotonic() + 600
    while killed is None and process.poll() is None and time.monotonic() < deadline:
        if registered_checkpoint(storage):
            workers = [
                p for p in psutil.process_iter(["cmdline"]) if "RayTrainWorker" in " ".join(p.info["cmdline"] or [])
            ]
            if len(workers) == 2:  # both workers of the group are up and training
                killed = workers[-1]
                killed.send_signal(signal.SIGKILL)
        time.sleep(0.2)
    output, _ = process.communicate(timeout=600)
    assert killed is not None, f"no PPO checkpoint was committed before the stage ended:\n{output[-3000:]}"
    assert process.returncode == 0, output[-3000:]
    assert re.search(r"Error count: 1 \(max allowed: \d+\)", output), output[-3000:]  # Ray's own restart decision
    resumed = re.search(r"resuming from \S*checkpoint-(\d+) \(update (\d+)\)", output)
    assert resumed, output[-3000:]
    after_restart = output[resumed.end() :]
    rerun = [int(u) for u in re.findall(r"ppo update (\d+)/4", after_restart)]
    assert rerun and min(rerun) > int(resumed.group(2)), after_restart[-3000:]  # continued, not retrained
    assert max_difference(weights(project / "models/policy"), uninterrupted) < 1e-6


def assert_same_baseline(local: dict, on_ray: dict) -> None:
    """The same samples, lengths and best-of-n picks; scores to float rounding (each worker scores its own share of
    the responses, so the reward model pads other batches)."""
    assert local["prompt_ids"] == on_ray["prompt_ids"] and local["metrics"] == on_ray["metrics"]
    assert local["rows"].keys() == on_ray["rows"].keys()
    for index, row in local["rows"].items():
        theirs = on_ray["rows"][index]
        assert {k: v for k, v in row.items() if k != "scores"} == {k: v for k, v in theirs.items() if k != "scores"}
        for scorer, scores in row["scores"].items():
            assert scores == pytest.approx(theirs["scores"][scorer], abs=1e-5), (index, scorer)


def test_baseline_and_evaluate_on_ray_give_the_local_results(ray_project):
    project = ray_project.path
    baseline_on_ray = json.loads((project / "data/baseline.json").read_text())
    on_ray = json.loads((project / "metrics/eval_samples.json").read_text())
    metrics_on_ray = json.loads((project / "metrics/eval.json").read_text())
    with params_set(project, "compute.backend=local"):
        stage(project, "baseline")
        assert_same_baseline(json.loads((project / "data/baseline.json").read_text()), baseline_on_ray)
        stage(project, "evaluate")
    assert json.loads((project / "metrics/eval_samples.json").read_text()) == on_ray
    assert json.loads((project / "metrics/eval.json").read_text()) == metrics_on_ray


def test_sft_and_ppo_on_two_ray_workers_match_two_accelerate_processes(ray_project, tmp_path):
    project, on_ray = ray_project.path, ray_project.weights
    with params_set(project, "compute.backend=local"):
        stage(project, "sft", ACCELERATE_2)
        assert max_difference(weights(project / "models/sft/model"), on_ray["sft"]) < WEIGHT_TOLERANCE
        stage(project, "align", ACCELERATE_2)
        assert max_difference(weights(project / "models/policy"), on_ray["ppo"]) < WEIGHT_TOLERANCE


def test_a_cluster_address_that_does_not_answer_is_one_line_naming_it_and_writes_nothing(ray_project):
    project = ray_project.path
    before = (project / "models/sft/model/model.safetensors").stat().st_mtime_ns
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs_before = len(client.search_runs(experiments))
    with params_set(project, f"compute.address=127.0.0.1:{free_port()}", "compute.connect_timeout_seconds=2"):
        result = run([sys.executable, "-m", "alignflow.stages.sft"], project, check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "compute.address" in lines[0], result.stderr
    assert (project / "models/sft/model/model.safetensors").stat().st_mtime_ns == before
    assert len(client.search_runs(experiments)) == runs_before


def test_dpo_on_two_ray_workers_matches_two_accelerate_processes(ray_project):
    project = ray_project.path
    with params_set(project, "align.method=dpo"):
        stage(project, "align")  # params.yaml still says compute.backend: ray
        on_ray = weights(project / "models/policy")
        assert json.loads((project / "metrics/align.json").read_text())["steps"] == 4
        with params_set(project, "compute.backend=local"):
            stage(project, "align", ACCELERATE_2)
        assert max_difference(weights(project / "models/policy"), on_ray) < WEIGHT_TOLERANCE
