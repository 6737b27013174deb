"""Shared by the training stages: TrainingArguments from params, step metrics to MLflow, safe resume.

transformers and mlflow are imported inside the functions, so that the stages and PPO code importing this module
for its checkpoint helpers start fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alignflow import paths
from alignflow.config import TrainerParams, section_dict
from alignflow.errors import ConfigError
from alignflow.precision import mixed_precision
from alignflow.tracking import is_main_process

if TYPE_CHECKING:
    from transformers import TrainerCallback, TrainingArguments

PARAMS_SNAPSHOT = "alignflow_params.json"


def precision_flags(setting: str, mode: str) -> dict[str, bool]:
    """bf16/fp16 TrainingArguments flags for `mode` (see alignflow.precision). Without a GPU `use_cpu` is set
    too: it is what makes several CPU processes (accelerate launch, Ray Train) train together."""
    import torch

    resolved = mixed_precision(setting, mode)
    cpu = {} if torch.cuda.is_available() else {"use_cpu": True}
    return {"bf16": resolved == "bf16", "fp16": resolved == "fp16", **cpu}


def train_with_plain_attention(model: Any) -> Any:
    """`model` (transformers or peft) switched to transformers' plain attention (matrix products and a softmax) on
    CPU, where the backward pass of torch's fused SDPA kernel is the slower one (`bench/attention_kernels.py` times
    the reward model's and SFT's steps and PPO's scoring passes with each kernel). Both compute the same function up
    to rounding (the benchmark prints how far apart), so decoding keeps SDPA (`sampling_attention`); GPUs keep their
    default kernel throughout."""
    import torch

    if not torch.cuda.is_available():
        transformers_model(model).set_attn_implementation("eager")
    return model


@contextlib.contextmanager
def sampling_attention(model: Any) -> Iterator[Any]:
    """`model` with torch's SDPA kernel while it decodes, then back to the kernel it trains with: a token at a time
    against a cache, SDPA is the faster one on CPU (`bench/attention_kernels.py`, its decoding workload)."""
    base = transformers_model(model)
    trained_with = base.config._attn_implementation
    switch = trained_with == "eager" and base._supports_sdpa
    if switch:
        base.set_attn_implementation("sdpa")
    try:
        yield model
    finally:
        if switch:
            base.set_attn_implementation(trained_with)


def transformers_model(model: Any) -> Any:
    """The transformers model inside a peft wrapper, or `model` itself."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def training_arguments(
    params: TrainerParams, output_dir: Path, seed: int, has_eval: bool, cls=None, **extra: Any
) -> TrainingArguments:
    """HF TrainingArguments (or a subclass such as TRL's RewardConfig) for one of our trainer sections; `extra` adds
    or overrides values."""
    from transformers import TrainingArguments

    evaluating = has_eval and params.eval_steps > 0
    values = dict(
        output_dir=str(output_dir),
        seed=seed,
        data_seed=seed,
        num_train_epochs=params.epochs,
        max_steps=params.max_steps,
        learning_rate=params.learning_rate,
        per_device_train_batch_size=params.batch_size,
        per_device_eval_batch_size=params.batch_size,
        gradient_accumulation_steps=params.grad_accum,
        warmup_steps=params.warmup_ratio,  # transformers 5 reads a value below 1 as a fraction of all steps
        weight_decay=params.weight_decay,
        max_grad_norm=params.max_grad_norm,
        eval_strategy="steps" if evaluating else "no",
        eval_steps=params.eval_steps if evaluating else None,
        save_strategy="steps",
        save_steps=params.save_steps,
        save_total_limit=params.save_total_limit,
        logging_steps=params.logging_steps,
        train_sampling_strategy="group_by_length" if params.group_by_length else "random",
        load_best_model_at_end=params.load_best_model_at_end and evaluating,
        metric_for_best_model="eval_loss" if evaluating else None,
        report_to="none",
        disable_tqdm=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        remove_unused_columns=False,
        **precision_flags(f"{params.section}.mixed_precision", params.mixed_precision),
    )
    return (cls or TrainingArguments)(**{**values, **extra})


def trainer_metrics(trainer, result) -> dict[str, Any]:
    """Headline numbers of a finished Trainer.train() call. The loss is the mean of every logged step's, so a run
    resumed from a checkpoint reports the whole run (the Trainer's own figure covers only the steps since)."""
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {
        "train_loss": round(sum(losses) / len(losses) if losses else result.training_loss, 4),
        # resumed from a final checkpoint that ends an epoch, the Trainer runs one more step, at learning rate 0
        # (the linear schedule has reached it), so the weights are the same and the step is not counted
        "steps": min(result.global_step, trainer.args.max_steps) if trainer.args.max_steps > 0 else result.global_step,
        "train_seconds": round(result.metrics["train_runtime"], 1),
    }


def mlflow_callback(prefix: str = "") -> TrainerCallback:
    """A TrainerCallback that logs every Trainer log line as MLflow step metrics (names prefixed) in the active run."""
    from transformers import TrainerCallback

    class MlflowStepMetrics(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            import mlflow

            if mlflow.active_run() and logs:
                mlflow.log_metrics(
                    {prefix + k.replace("/", "_"): float(v) for k, v in logs.items() if isinstance(v, (int, float))},
                    step=state.global_step,
                )

    return MlflowStepMetrics()


def params_snapshot(*sections: Any) -> dict[str, Any]:
    snapshot: dict[str, Any] = {}
    for section in sections:
        prefix = type(section).__name__.removesuffix("Params").lower()
        snapshot.update(
            {f"{prefix}.{k}": v for k, v in section_dict(section).items()}
            if dataclasses.is_dataclass(section)
            else {prefix: section}
        )
    return json.loads(json.dumps(snapshot, default=list))


HF_CHECKPOINT_MARKER = "trainer_state.json"


def prepare_checkpoint_dir(directory: Path, snapshot: dict[str, Any]) -> bool:
    """Create `directory` for checkpoints or check it belongs to a run with the same params.

    Returns True when it holds checkpoints to resume from. A directory left by a run with other params
    is refused, naming the first key that differs, so an old run is never silently continued. Only the main
    process checks and writes (several processes may share the folder).
    """
    marker = directory / PARAMS_SNAPSHOT
    if not is_main_process():
        directory.mkdir(parents=True, exist_ok=True)
        return any(directory.glob("checkpoint-*"))
    if marker.is_file():
        previous = json.loads(marker.read_text())
        for key in sorted(set(previous) | set(snapshot)):
            if previous.get(key) != snapshot.get(key):
                raise ConfigError(
                    f"{directory}: holds a checkpoint of a run with {key}={previous.get(key)!r}, but params "
                    f"now say {snapshot.get(key)!r}; delete {directory} to start over, or restore the value"
                )
        return any(directory.glob("checkpoint-*"))
    if directory.exists():
        shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)  # another process may have created it meanwhile
    marker.write_text(json.dumps(snapshot, indent=1, sort_keys=True))
    return False


def complete_checkpoints(directory: Path, marker: str) -> list[Path]:
    """`checkpoint-<step>` folders holding `marker`, the file their writer saves last, oldest first."""
    return [d for d in paths.checkpoints_by_step(directory) if (d / marker).is_file()]


def last_checkpoint(directory: Path) -> str | None:
    """The newest complete HF Trainer checkpoint. One cut short by a kill mid-save (no trainer_state.json, which
    the Trainer writes after the weights, optimizer and RNG states) is deleted: never resumed from, nor rotated."""
    complete = complete_checkpoints(directory, HF_CHECKPOINT_MARKER)
    for folder in set(directory.glob("checkpoint-*")) - set(complete):
        shutil.rmtree(folder)
    if complete and is_main_process():
        print(f"resuming from {complete[-1]}", flush=True)
    return str(complete[-1]) if complete else None
