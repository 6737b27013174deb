"""Write a merged causal LM folder as a GGUF file that llama.cpp-based runtimes (llama-cli, Ollama, LM Studio) load.

The layout follows llama.cpp's own converter for the Llama architecture (SmolLM2 is one): llama.* hyperparameters,
the byte-level BPE tokenizer as tokens, token types and merges, the chat template, and the weights under GGUF
tensor names, with the query and key projections permuted into llama.cpp's rotary layout (transformers' GGUF
loader permutes them back). Norms stay float32; the matrices are float16 (`f16`) or 8-bit blocks (`q8_0`). Beside
the file, an Ollama `Modelfile` names it, its chat template (ChatML) and its stop token.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alignflow.errors import AlignflowError
from alignflow.io import file_digest
from alignflow.models.loading import download_registered_policy

ARCHITECTURES = {"LlamaForCausalLM": "llama"}
"""Hugging Face architectures this exporter writes, and their GGUF name."""
QUANTS = ("f16", "q8_0")
LAYER_TENSORS = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
OLLAMA_CHATML = """{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""


class ExportError(AlignflowError):
    """A model this exporter cannot write, or an output it must not overwrite."""


@dataclass(frozen=True)
class Exported:
    path: Path
    modelfile: Path
    sha256: str
    size_bytes: int


def export_gguf(model_dir: Path, out: Path, quant: str = "f16", name: str = "alignflow-policy") -> Exported:
    """`model_dir` (config, tokenizer, safetensors) -> `out` (.gguf) and `out`'s Modelfile, written all or nothing."""
    import gguf
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if quant not in QUANTS:
        raise ExportError(f"--quant: {quant!r} is not one of {', '.join(QUANTS)}")
    config = AutoConfig.from_pretrained(model_dir)
    architecture = (config.architectures or ["(none)"])[0]
    if architecture not in ARCHITECTURES:
        raise ExportError(
            f"{model_dir}: architecture {architecture} cannot be exported to GGUF here "
            f"(supported: {', '.join(ARCHITECTURES)})"
        )
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    vocabulary = _vocabulary(tokenizer, model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    partial = out.with_name(f".{out.name}.part")
    try:
        writer = gguf.GGUFWriter(str(partial), ARCHITECTURES[architecture])
        _write_metadata(writer, config, tokenizer, vocabulary, name, quant)
        for tensor_name, array in _tensors(model, config):
            _add_tensor(writer, tensor_name, array, quant)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    except BaseException:  # nothing half-written is left behind
        partial.unlink(missing_ok=True)
        raise
    modelfile = out.with_name(f"{out.stem}.Modelfile")
    modelfile.write_text(_modelfile(out.name, tokenizer))
    os.replace(partial, out)
    return Exported(out, modelfile, file_digest(out, "sha256"), out.stat().st_size)


def _vocabulary(tokenizer, model_dir: Path) -> dict[str, Any]:
    """Tokens in id order with their llama.cpp types (1 normal, 3 control, 4 user-defined) and the BPE merges."""
    backend = json.loads(tokenizer.backend_tokenizer.to_str()) if tokenizer.is_fast else {}
    model = backend.get("model", {})
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(backend.get("pre_tokenizer")):
        raise ExportError(
            f"{model_dir}: only byte-level BPE tokenizers export to GGUF here (found {model.get('type')})"
        )
    size = max(len(tokenizer), max(model["vocab"].values()) + 1)
    tokens, types = [f"[PAD{i}]" for i in range(size)], [5] * size  # 5: unused
    for token, index in model["vocab"].items():
        tokens[index], types[index] = token, 1
    for added in backend.get("added_tokens", []):
        tokens[added["id"]], types[added["id"]] = added["content"], 3 if added["special"] else 4
    merges = [merge if isinstance(merge, str) else " ".join(merge) for merge in model.get("merges", [])]
    return {"tokens": tokens, "types": types, "merges": merges}


def _write_metadata(writer, config, tokenizer, vocabulary: dict[str, Any], name: str, quant: str) -> None:
    import gguf

    heads = config.num_attention_heads
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if quant == "f16" else gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.num_key_value_heads or heads)
    writer.add_rope_dimension_count(getattr(config, "head_dim", None) or config.hidden_size // heads)
    writer.add_rope_freq_base(float(_rope_theta(config)))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(len(vocabulary["tokens"]))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm" if "SmolLM" in str(tokenizer.name_or_path) else "default")
    writer.add_token_list(vocabulary["tokens"])
    writer.add_token_types(vocabulary["types"])
    writer.add_token_merges(vocabulary["merges"])
    for add, token_id in (
        (writer.add_bos_token_id, tokenizer.bos_token_id),
        (writer.add_eos_token_id, tokenizer.eos_token_id),
        (writer.add_unk_token_id, tokenizer.unk_token_id),
        (writer.add_pad_token_id, tokenizer.pad_token_id),
    ):
        if token_id is not None:
            add(token_id)
    writer.add_add_bos_token(False)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def _rope_theta(config) -> float:
    parameters = getattr(config, "rope_parameters", None) or {}
    return parameters.get("rope_theta") or getattr(config, "rope_theta", 10000.0)


def _tensors(model, config):
    """(GGUF name, float32 array) for every weight, q and k permuted as llama.cpp's converter does."""
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads or config.num_attention_heads
    state = {key: value.detach().float().numpy() for key, value in model.state_dict().items()}
    yield "token_embd.weight", state["model.embed_tokens.weight"]
    for layer in range(config.num_hidden_layers):
        for source, target in LAYER_TENSORS.items():
            array = state[f"model.layers.{layer}.{source}.weight"]
            if target == "attn_q":
                array = _permute(array, heads)
            elif target == "attn_k":
                array = _permute(array, kv_heads)
            yield f"blk.{layer}.{target}.weight", array
    yield "output_norm.weight", state["model.norm.weight"]
    if not config.tie_word_embeddings:
        yield "output.weight", state["lm_head.weight"]


def _permute(weights: np.ndarray, heads: int) -> np.ndarray:
    rows = weights.shape[0]
    return weights.reshape(heads, 2, rows // heads // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def _add_tensor(writer, name: str, array: np.ndarray, quant: str) -> None:
    import gguf

    if array.ndim == 1:
        writer.add_tensor(name, array.astype(np.float32))
    elif quant == "f16":
        writer.add_tensor(name, array.astype(np.float16))
    else:
        quantized = gguf.quants.quantize(array.astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor(name, quantized, raw_shape=quantized.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)


def _modelfile(gguf_name: str, tokenizer) -> str:
    lines = [f"FROM ./{gguf_name}"]
    if tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template:
        lines.append(f'TEMPLATE """{OLLAMA_CHATML}"""')
    stop = (
        tokenizer.eos_token
        if not tokenizer.chat_template or "<|im_end|>" not in tokenizer.chat_template
        else "<|im_end|>"
    )
    lines += [f'PARAMETER stop "{stop}"', "PARAMETER temperature 0.7", ""]
    return "\n".join(lines)


def export_registered(
    client, name: str, version: str | None, alias: str | None, quant: str, out: Path | None, force: bool
) -> tuple[str, Exported]:
    """Export a registered version (by number or alias) to GGUF, log the file and its Modelfile on the version's
    run under `gguf/`, and tag the version with the file's sha256. Returns (version, what was written)."""
    import tempfile

    registered = _registered(client, name, version, alias)
    out = out or Path("exports") / f"{name}-v{registered.version}.{quant}.gguf"
    if out.exists() and not force:
        raise ExportError(f"{out}: exists; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="alignflow-export-") as scratch:
        policy = download_registered_policy(f"models:/{name}/{registered.version}", Path(scratch))
        exported = export_gguf(policy, out, quant, f"{name}-v{registered.version}")
    for path in (exported.path, exported.modelfile):
        client.log_artifact(registered.run_id, str(path), "gguf")
    client.set_model_version_tag(name, registered.version, f"lineage.gguf.{quant}.sha256", exported.sha256)
    return str(registered.version), exported


def _registered(client, name: str, version: str | None, alias: str | None):
    """The model version by number or alias; an unknown one is one line."""
    try:
        return client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except Exception as exc:  # MLflow raises several types for an unknown name, version or alias
        what = f"alias @{alias}" if alias else f"version {version}"
        raise ExportError(f"{name} {what}: not in the registry ({type(exc).__name__})") from None
