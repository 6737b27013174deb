"""register: log the policy (and reward model) to the MLflow registry with lineage; move `@staging` if the gate passes.

Run: `python -m alignflow.stages.register`. The version loads with
`mlflow.pyfunc.load_model("models:/<name>@staging").predict(["a prompt"])`. Re-running for the same
candidate reuses its version instead of registering a duplicate.
"""

from __future__ import annotations

import json
import os
from typing import Any

from alignflow import paths
from alignflow.config import Params
from alignflow.io import staged_outputs, write_json
from alignflow.registry import client as registry
from alignflow.registry.registration import register_candidate
from alignflow.stages.common import cli, require


def run(params: Params) -> dict[str, Any]:
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # our own retries wrap whole operations
    eval_metrics = json.loads(require(paths.metrics_file("evaluate"), "evaluate").read_text())
    require(paths.POLICY, "align")
    require(paths.REWARD_MODEL, "reward")
    config = params.register
    with registry.refused_as_one_line(f"registering {config.model_name}"):
        result = registry.with_retries(
            lambda: register_candidate(params, eval_metrics),
            config.retries,
            config.retry_delay_seconds,
            f"registering {config.model_name}",
        )
    with staged_outputs(paths.metrics_file("register")) as (metrics_path,):
        write_json(metrics_path, result)
    print(
        f"register: version {result['version']} {'promoted to' if result['promoted'] else 'not promoted to'} "
        f"@{config.alias}: {result['reason']}"
    )
    return result


def main() -> None:
    cli(run)


if __name__ == "__main__":
    main()
