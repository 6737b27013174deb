"""ingest: validate the configured sources into data/raw/*.jsonl and materialise models/base and models/encoder.

Run: `python -m alignflow.stages.ingest` (what `dvc repro ingest` calls).
mlflow is imported inside `run`, so that importing this module stays fast.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from alignflow import paths, tracking
from alignflow.config import DATASETS, Params, SourceParams, section_dict
from alignflow.data.presets import converter, validate_mapped
from alignflow.data.records import prompt_text
from alignflow.data.validate import Validated, check_ids_across_sources
from alignflow.errors import DataError
from alignflow.io import staged_outputs, write_json, write_jsonl
from alignflow.models.sources import materialise_encoder, materialise_policy
from alignflow.stages.common import cli
from alignflow.verifiers.checks import constraint_item
from alignflow.verifiers.decontamination import benchmark_prompts, check_decontaminated, task_text


def source_fingerprint(source: SourceParams) -> str:
    path = Path(source.path)
    if not path.is_file():
        return f"{source.path}@{source.split}"
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def check_constraints(result: Validated, file: str, on_error: str) -> None:
    """Every prompt's IFEval constraints built as lm-eval's checkers build them: an unknown id, or kwargs that do
    not fit their checker, is `file:line: constraints[i]...: problem` (skipped and counted with on_error: skip)."""
    kept = [], []
    for where, record in zip(result.locations, result.records):
        try:
            if record.get("constraints"):
                constraint_item(record, file, where)
        except DataError as error:
            if on_error != "skip":
                raise
            result.rejects.append(error)
            continue
        kept[0].append(where)
        kept[1].append(record)
    result.locations, result.records = kept


TRAINED_ON = ("sft", "comparisons", "prompts")
"""Datasets a stage trains on: none may overlap IFEval's test prompts."""


def run(params: Params) -> dict[str, Any]:
    config = params.ingest
    sources = {name: getattr(config, name) for name in DATASETS}
    for name, source in sources.items():  # a misnamed preset stops the stage before any file is read
        if source.preset:
            converter(name, source.path, source.preset)
    validated = {
        name: validate_mapped(name, source, config.on_error, config.max_pairs_per_group, params.common.seed)
        for name, source in sources.items()
    }
    check_ids_across_sources(validated, sources, config.on_error)
    for name in ("prompts", "eval_prompts"):
        check_constraints(validated[name], sources[name].path, config.on_error)
    benchmark = benchmark_prompts(Path(params.evaluate.ifeval.path)) if params.evaluate.ifeval.enabled else []
    for name in TRAINED_ON:  # a benchmark prompt trained on would measure memory, not instruction following
        result = validated[name]
        texts = ((where, task_text(record)) for where, record in zip(result.locations, result.records))
        check_decontaminated(texts, benchmark, sources[name].path)
    metrics: dict[str, Any] = {}
    for name, result in validated.items():
        metrics[f"{name}_records"] = len(result.records)
        metrics[f"{name}_rejected"] = len(result.rejects)
    rejects = [str(error) for result in validated.values() for error in result.rejects]
    corpus = [prompt_text(name, r) for name in ("sft", "prompts") for r in validated[name].records]
    corpus += [m["content"] for r in validated["sft"].records for m in r["messages"]]

    with tracking.stage_run("ingest", params.common.experiment, section_dict(config)) as mlflow_run:
        with staged_outputs(paths.RAW_DATA, paths.BASE_MODEL, paths.ENCODER, paths.metrics_file("ingest")) as outs:
            raw_dir, base_dir, encoder_dir, metrics_path = outs
            for name, result in validated.items():
                write_jsonl(raw_dir / f"{name}.jsonl", result.records)
            (raw_dir / "rejects.txt").write_text("".join(f"{line}\n" for line in rejects), encoding="utf-8")
            model_facts = materialise_policy(config.model, base_dir, corpus, params.common.seed)
            materialise_encoder(config.encoder, encoder_dir)
            metrics["base_model_parameters"] = int(model_facts["parameters"])
            write_json(metrics_path, metrics)
        import mlflow

        mlflow.log_metrics(metrics)
        mlflow.set_tags({f"source.{name}": source_fingerprint(getattr(config, name)) for name in DATASETS})
        mlflow.set_tag("base_model_class", model_facts["model_class"])
        if rejects:
            mlflow.log_text("\n".join(rejects), "rejects.txt")
    for line in rejects[:20]:
        print(f"skipped: {line}")
    print(f"ingest: {metrics} (run {mlflow_run.info.run_id})")
    return metrics


def main() -> None:
    cli(run)


if __name__ == "__main__":
    main()
