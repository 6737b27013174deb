"""Inside a Ray Train worker: unpack the stage's inputs, resume from the run's newest checkpoint, run the stage's
training function unchanged, and hand rank 0's outputs back as the run's final checkpoint.

Each worker works in a private folder (no shared disk is assumed). Training code says when it has written a
checkpoint (`checkpoint_saved`, a no-op outside a worker); every rank then reports the newest checkpoint of each
`checkpoints/<name>/` folder it holds, and Ray Train merges the ranks' files into one checkpoint in
`compute.storage_path`. A restarted worker group starts from that checkpoint, so the stage's own resume logic
(params marker, newest complete checkpoint) continues the run exactly as after a local interruption.
Ray and transformers are imported inside the functions, so that the training stages, which import this module for
their checkpoint hooks, load Ray only when they run on it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alignflow import paths, tracking
from alignflow.models.loading import allow_remote_code

if TYPE_CHECKING:
    from transformers import TrainerCallback

FINAL = "outputs"
"""Folder of the final checkpoint that holds the stage's outputs at their project-relative paths."""

_report_checkpoint: Callable[[], None] | None = None


def checkpoint_saved() -> None:
    """Training code calls this on every rank right after a checkpoint is complete."""
    if _report_checkpoint is not None:
        _report_checkpoint()


def checkpoint_callback() -> TrainerCallback:
    """An HF TrainerCallback calling `checkpoint_saved` after each save (the Trainer calls it on every rank)."""
    from transformers import TrainerCallback

    class ReportCheckpoint(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            checkpoint_saved()

    return ReportCheckpoint()


def pack(path: Path) -> bytes:
    """A file or folder as an uncompressed tar (weights do not compress), named by its project-relative path.
    Symbolic links (a DVC cache of type symlink, an input linked from elsewhere) travel as what they point to: a
    worker on another node cannot follow them, and unpacking refuses links to absolute paths."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", dereference=True) as archive:
        archive.add(str(path), arcname=str(path))
    return buffer.getvalue()


def unpack(blob: bytes, into: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(blob)) as archive:
        archive.extractall(into, filter="data")


@contextlib.contextmanager
def work_folder(inputs: list[Any], params) -> Iterator[Path]:
    """A private folder, made the working directory, holding the inputs (Ray object refs of `pack` blobs)."""
    import ray

    home, work = Path.cwd(), Path(tempfile.mkdtemp(prefix="alignflow-worker-"))
    os.chdir(work)
    try:
        for blob in inputs:
            unpack(ray.get(blob), work)
        allow_remote_code(params.ingest.trust_remote_code)
        yield work
    finally:
        os.chdir(home)
        shutil.rmtree(work, ignore_errors=True)


def train_loop(config: dict[str, Any]) -> None:
    """Ray Train's per-worker function (see the module docstring); `config` comes from `launch.run_on_ray`."""
    import ray.train

    global _report_checkpoint
    with work_folder(config["inputs"], config["params"]) as work:
        result = work / ".result"  # what rank 0 reports last: the stage's outputs under FINAL/
        restored = ray.train.get_checkpoint()
        if restored is not None:  # training state (checkpoints/...) or, rarely, the finished outputs
            restored.to_directory(str(result))
            if (result / paths.CHECKPOINTS).is_dir():
                shutil.move(result / paths.CHECKPOINTS, work / paths.CHECKPOINTS)
        os.environ[tracking.STAGE_RUN_ENV] = config["run_id"]
        os.environ["MLFLOW_TRACKING_URI"] = config["tracking_uri"]
        main = ray.train.get_context().get_world_rank() == 0
        final = result / FINAL
        try:
            if (final / "metrics.json").is_file():  # complete before the restart: report them again
                metrics = json.loads((final / "metrics.json").read_text())
            else:
                _report_checkpoint = _reporter(work)
                metrics = config["train"](config["params"])
                if main:
                    for output in config["outputs"]:
                        (final / output).parent.mkdir(parents=True, exist_ok=True)
                        shutil.move(output, final / output)
                    (final / "metrics.json").write_text(json.dumps(metrics))
            _report(metrics, result if main else None, "final")
        finally:
            _report_checkpoint = None
            os.environ.pop(tracking.STAGE_RUN_ENV, None)


def run_task(task: Callable[[Any, Any], Any], params, share: Any, inputs: list[Any]) -> Any:
    """A Ray task's body: `task(params, share)` in a work folder holding the inputs."""
    with work_folder(inputs, params):
        return task(params, share)


def _reporter(work: Path) -> Callable[[], None]:
    def report_newest() -> None:
        staging = Path(tempfile.mkdtemp(prefix=".report-", dir=work))
        try:
            for folder in _checkpoint_folders(work / paths.CHECKPOINTS):
                newest = _newest(folder)
                target = staging / folder.relative_to(work)
                if newest is not None:
                    shutil.copytree(newest, target / newest.name)
                for marker in folder.glob("*.json"):  # the params snapshot that lets the stage resume
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(marker, target / marker.name)
            _report({}, staging if any(staging.iterdir()) else None)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    return report_newest


def _checkpoint_folders(root: Path) -> list[Path]:
    return sorted(folder for folder in root.iterdir() if folder.is_dir()) if root.is_dir() else []


def _newest(folder: Path) -> Path | None:
    steps = paths.checkpoints_by_step(folder)
    return steps[-1] if steps else None


def _report(metrics: dict[str, Any], folder: Path | None, name: str | None = None) -> None:
    """Every rank calls this the same number of times (Ray Train pairs the reports up)."""
    import ray.train

    checkpoint = ray.train.Checkpoint.from_directory(str(folder)) if folder is not None else None
    ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=name)
