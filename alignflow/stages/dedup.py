"""dedup: exact then semantic near-duplicate removal (and eval decontamination) into data/dedup/.

Run: `python -m alignflow.stages.dedup`. Writes the kept records, `report.jsonl` with one
(dataset, removed_id, kept_id, similarity, reason) row per removal, and a similarity histogram.
mlflow is imported inside `run`, so that importing this module stays fast.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm.auto import tqdm

from alignflow import paths, tracking
from alignflow.config import DATASETS, Params, section_dict
from alignflow.data.dedup import deduplicate, remove_records, select_contaminated
from alignflow.data.records import prompt_text
from alignflow.evaluation.plots import similarity_histogram
from alignflow.io import staged_outputs, write_json, write_jsonl
from alignflow.models.encoder import CachedEncoder
from alignflow.stages.common import cli, read_records, require

TRAINING_SETS = ("sft", "comparisons", "prompts")


def run(params: Params) -> dict[str, Any]:
    config = params.dedup
    records = {name: read_records(name, paths.raw_file(name), "ingest") for name in DATASETS}
    encoder = CachedEncoder(require(paths.ENCODER, "ingest"), config.batch_size)
    report: list[dict[str, Any]] = []
    similarities: list[np.ndarray] = []
    metrics: dict[str, Any] = {}

    for name in DATASETS:
        before = len(records[name])
        if name in config.apply_to:
            texts = [prompt_text(name, r) for r in records[name]]
            with tqdm(total=len(texts), desc=f"dedup {name}", unit="rec") as bar:
                found, nearest = deduplicate(
                    texts, encoder, config.threshold, config.exact, config.block_size, bar.update
                )
            similarities.append(nearest[np.isfinite(nearest)])
            records[name], removed = remove_records(name, records[name], found, records[name], "duplicate")
            report.extend(removed)
        metrics[f"{name}_removed_pct"] = round(100 * (before - len(records[name])) / before, 2)
    if config.decontaminate:
        eval_embeddings = encoder([r["prompt"] for r in records["eval_prompts"]])
        for name in TRAINING_SETS:
            texts = [prompt_text(name, r) for r in records[name]]
            found = select_contaminated(encoder(texts), eval_embeddings, config.threshold, config.block_size)
            records[name], removed = remove_records(
                name, records[name], found, records["eval_prompts"], "overlaps eval prompt"
            )
            report.extend(removed)
            metrics[f"{name}_eval_overlap_removed"] = len(found)
    for name in DATASETS:
        metrics[f"{name}_kept"] = len(records[name])

    with tracking.stage_run("dedup", params.common.experiment, section_dict(config)):
        import mlflow

        with staged_outputs(
            paths.DEDUP_DATA, paths.metrics_file("dedup"), paths.PLOTS / "dedup_similarity.png"
        ) as outs:
            out_dir, metrics_path, plot_path = outs
            for name in DATASETS:
                write_jsonl(out_dir / f"{name}.jsonl", records[name])
            write_jsonl(out_dir / "report.jsonl", report)
            write_json(metrics_path, metrics)
            figure = similarity_histogram(
                np.concatenate(similarities) if similarities else np.zeros(0), config.threshold
            )
            figure.savefig(plot_path, dpi=100)
        mlflow.log_metrics(metrics)
        mlflow.log_figure(figure, "dedup_similarity.png")
        mlflow.log_artifact(str(paths.DEDUP_DATA / "report.jsonl"))
    print(f"dedup: {metrics}")
    return metrics


def main() -> None:
    cli(run)


if __name__ == "__main__":
    main()
