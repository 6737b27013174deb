"""What every stage shares: input checks that name the stage to run first, and the CLI wrapper.

`datasets` is imported inside `load_arrow`, so that the stages that read no Arrow data start without it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alignflow.config import Params, SourceParams, load_params
from alignflow.data.validate import validate_source
from alignflow.errors import AlignflowError, StageInputError, report
from alignflow.io import recover_output
from alignflow.models.loading import allow_remote_code

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict


def require(path: Path, producer: str) -> Path:
    """An input of this stage; if missing, say which stage writes it."""
    recover_output(path)
    if not path.exists():
        raise StageInputError(f"{path} not found: run the `{producer}` stage first (dvc repro {producer})")
    return path


def read_records(dataset: str, path: Path, producer: str) -> list[dict[str, Any]]:
    """Re-validate an upstream stage's JSONL output: a hand-edited file fails here, not mid-training."""
    return validate_source(dataset, SourceParams(str(require(path, producer)))).records


def load_arrow(path: Path, producer: str) -> Dataset | DatasetDict:
    """An upstream Arrow dataset, held in memory so that map() never writes cache files into a DVC output."""
    from datasets import load_from_disk

    return load_from_disk(str(require(path, producer)), keep_in_memory=True)


def cli(run: Callable[[Params], dict[str, Any]]) -> None:
    """Run a stage on params.yaml; errors meant for people become one line and exit code 1."""
    try:
        params = load_params()
        allow_remote_code(params.ingest.trust_remote_code)
        run(params)
    except AlignflowError as exc:
        report(exc)
        sys.exit(1)
