"""Run a training stage here (`compute.backend: local`) or on Ray Train workers (`ray`), with the same code.

On Ray the stage process stays the DVC/MLflow boundary: it opens the stage's MLflow run (rank 0 of the workers
logs into it), hands the stage's inputs to the workers through Ray's object store, lets Ray Train keep
checkpoints in `compute.storage_path` and restart a failed worker group from the newest (`FailureConfig`), and
moves rank 0's outputs, returned as the run's final checkpoint, into the DVC outputs atomically.
Ray is imported inside the functions, so that stages on `compute.backend: local` never load it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from alignflow import paths, tracking
from alignflow.config import ComputeParams, Params, section_dict
from alignflow.errors import AlignflowError, ConfigError, first_line
from alignflow.io import staged_outputs
from alignflow.scale import worker

TrainFn = Callable[[Params], dict[str, Any]]


def train_here_or_on_ray(
    stage: str, train: TrainFn, params: Params, inputs: Sequence[Path], outputs: Sequence[Path]
) -> dict:
    """`train(params)` in this process, or in `compute.num_workers` Ray Train workers; returns its metrics."""
    if params.compute.backend == "local":
        return train(params)
    return run_on_ray(stage, train, params, inputs, outputs)


def run_on_ray(stage: str, train: TrainFn, params: Params, inputs: Sequence[Path], outputs: Sequence[Path]) -> dict:
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    compute = params.compute
    missing = [str(path) for path in inputs if not path.exists()]
    if missing:
        raise ConfigError(f"{stage}: inputs {', '.join(missing)} not found: run the stages before it (dvc repro)")
    connect(compute)
    try:
        blobs = [worker.pack(path) for path in inputs]
        with tracking.stage_run(stage, params.common.experiment, section_dict(getattr(params, stage))) as run:
            trainer = TorchTrainer(
                worker.train_loop,
                train_loop_config={
                    "train": train,
                    "params": params,
                    "inputs": [ray.put(blob) for blob in blobs],
                    "outputs": [str(path) for path in outputs],
                    "run_id": run.info.run_id,
                    "tracking_uri": tracking.tracking_uri(),
                },
                scaling_config=ScalingConfig(
                    num_workers=compute.num_workers,
                    use_gpu=compute.use_gpu,
                    resources_per_worker=worker_resources(compute) or None,
                ),
                run_config=RunConfig(
                    name=run_name(stage, params, blobs),
                    storage_path=storage_path(compute),
                    failure_config=FailureConfig(max_failures=compute.max_failures),
                    checkpoint_config=CheckpointConfig(num_to_keep=2),
                ),
            )
            del blobs
            result = _fit(trainer)
            with result.checkpoint.as_directory() as folder, staged_outputs(*outputs) as temps:
                for output, temp in zip(outputs, temps):
                    source = Path(folder) / worker.FINAL / output
                    if source.is_dir():
                        shutil.copytree(source, temp, dirs_exist_ok=True)
                    else:
                        shutil.copy2(source, temp)
        result.filesystem.delete_dir(result.path)  # like checkpoints/: kept only while the stage is unfinished
        return result.metrics
    finally:
        ray.shutdown()


def map_on_ray(
    task: Callable[[Params, Any], Any], shares: Sequence[Any], params: Params, inputs: Sequence[Path]
) -> list:
    """`task(params, share)` for every share, as Ray tasks with one worker's resources each; results in order."""
    import ray

    connect(params.compute)
    try:
        resources = worker_resources(params.compute)
        remote = ray.remote(worker.run_task).options(
            num_cpus=resources.pop("CPU", 1),
            num_gpus=resources.pop("GPU", 1 if params.compute.use_gpu else 0),
            resources=resources or None,
        )
        refs = [ray.put(worker.pack(path)) for path in inputs]
        return _get(ray, [remote.remote(task, params, share, refs) for share in shares])
    finally:
        ray.shutdown()


def rows_on_ray(
    task: Callable[[Params, Any], dict[int, Any]], batches: Sequence[Any], params: Params, inputs: Sequence[Path]
) -> dict[int, Any]:
    """`task(params, share)` over the batches dealt round-robin to `compute.num_workers` Ray tasks, each returning
    {prompt index: row}; the rows of all shares in one dict."""
    workers = params.compute.num_workers
    shares = [batches[w::workers] for w in range(workers) if batches[w::workers]]
    return {index: row for part in map_on_ray(task, shares, params, inputs) for index, row in part.items()}


def _get(ray, futures: list) -> list:
    """ray.get; a task's own one-line error (bad input) comes through as that error."""
    try:
        return ray.get(futures)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, AlignflowError):
            raise exc.cause from None
        raise


def connect(compute: ComputeParams) -> None:
    """Start a local Ray (empty address) or join the cluster at `compute.address`, failing in one line if it is
    not there."""
    import ray

    address = compute.address.strip()
    if not address:
        ray.init(address="local", include_dashboard=False, logging_level="WARNING")
        return
    if address != "auto":
        _check_answers(address, compute.connect_timeout_seconds)
    try:
        ray.init(address=address, logging_level="WARNING")
    except (ConnectionError, RuntimeError, TimeoutError) as exc:
        raise ConfigError(f"compute.address: no Ray cluster at {address!r} ({first_line(exc)})") from None


def _check_answers(address: str, timeout: float) -> None:
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    if not parsed.hostname or not parsed.port:
        raise ConfigError(f"compute.address: {address!r} is not `auto`, host:port or ray://host:port")
    try:
        socket.create_connection((parsed.hostname, parsed.port), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(
            f"compute.address: nothing answers at {parsed.hostname}:{parsed.port} within {timeout:g} s ({exc}); "
            'start the cluster (`ray start --head`) or set compute.address to "" for a local Ray'
        ) from None


def worker_resources(compute: ComputeParams) -> dict[str, float]:
    """The resources each worker asks for: as configured, or on a Ray this run starts, an equal share of this
    machine's CPUs (Ray sets each worker's thread count from it)."""
    if compute.resources_per_worker or compute.address.strip():
        return dict(compute.resources_per_worker)
    return {"CPU": max(1, (os.cpu_count() or 1) // compute.num_workers)}


def storage_path(compute: ComputeParams) -> str:
    return compute.storage_path or str((paths.CHECKPOINTS / "ray").resolve())


def run_name(stage: str, params: Params, blobs: Sequence[bytes]) -> str:
    """Same stage, params and inputs, same name: a rerun after the stage process died resumes Ray Train's run
    from its newest checkpoint, and anything else starts afresh."""
    digest = hashlib.sha256(
        json.dumps(dataclasses.asdict(dataclasses.replace(params, compute=ComputeParams())), default=str).encode()
    )
    for blob in blobs:
        digest.update(hashlib.sha256(blob).digest())
    return f"alignflow-{stage}-{digest.hexdigest()[:12]}"


def _fit(trainer):
    """trainer.fit(); a worker's own one-line error (bad config, bad input) comes through as that error."""
    from ray.train import WorkerGroupError

    try:
        return trainer.fit()
    except WorkerGroupError as exc:
        for failure in exc.worker_failures.values():
            cause = getattr(failure, "cause", failure)
            if isinstance(cause, AlignflowError):
                raise cause from None
        raise
