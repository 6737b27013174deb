"""Loading saved model folders: one line naming the folder when its files do not load; remote code only on request.

`trust_remote_code` runs Python shipped with a model. It is off unless `ingest.trust_remote_code` turns it on;
the stage CLI sets it once per process from params (`allow_remote_code`), so every load site agrees.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alignflow.errors import AlignflowError, first_line

log = logging.getLogger(__name__)
_trust_remote_code = False


class ModelLoadError(AlignflowError):
    """A model folder (or hub id) whose files could not be loaded."""


def allow_remote_code(enabled: bool) -> None:
    """Trust (or stop trusting) code shipped with models, for the rest of this process."""
    global _trust_remote_code
    if enabled and not _trust_remote_code:
        log.warning("ingest.trust_remote_code is on: Python code shipped with the models will run on this machine")
    _trust_remote_code = bool(enabled)


def remote_code_trusted() -> bool:
    return _trust_remote_code


def load_pretrained(loader: Any, *args: Any, **kwargs: Any) -> Any:
    """`loader.from_pretrained(*args, **kwargs)`, the folder (or hub id) last among `args`; a failure becomes one
    line naming that folder and the cause."""
    if _takes_remote_code(loader):  # always explicit: left unset, transformers asks on stdin
        kwargs.setdefault("trust_remote_code", _trust_remote_code)
    try:
        return loader.from_pretrained(*args, **kwargs)
    except Exception as exc:  # corrupt safetensors, bad JSON, missing files, unknown architecture: all one line
        if "trust_remote_code" in str(exc) and not _trust_remote_code:
            raise ModelLoadError(
                f"{args[-1]}: ships its own Python code, which runs only with ingest.trust_remote_code: true"
            ) from exc
        raise ModelLoadError(f"{args[-1]}: cannot load {_kind(loader)} ({first_line(exc)})") from exc


def download_registered_policy(uri: str, into: Path | None = None) -> Path:
    """The model folder of a registered policy version (`models:/<name>/<N>` or `models:/<name>@<alias>`),
    downloaded into `into` (default: a temporary folder of MLflow's); one line naming `uri` when the registry has
    no such version or does not answer."""
    import mlflow

    try:
        folder = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(into) if into else None)
    except Exception as exc:  # MLflow raises several types for an unknown name, version or alias
        raise ModelLoadError(f"--model {uri}: not found in the registry or not reachable ({first_line(exc)})") from None
    return Path(folder) / "artifacts" / "policy"  # where the registered pyfunc keeps the policy


def _takes_remote_code(loader: Any) -> bool:
    return getattr(loader, "__module__", "").startswith("transformers")


def _kind(loader: Any) -> str:
    name = getattr(loader, "__name__", type(loader).__name__)
    return "the tokenizer" if "Tokenizer" in name else "the adapter" if name.startswith("Peft") else "the model"
