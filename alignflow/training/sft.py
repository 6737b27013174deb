"""Supervised fine-tuning with the HF Trainer: LoRA, QLoRA (4-bit NF4), full (optionally partly frozen), prompt tuning.

Data comes pre-tokenized with completion-only labels; a batch's examples share packed rows (training.packing), or
are padded to its longest where the model cannot keep packed examples apart.
transformers and peft are imported inside the functions, so that the stages importing this module start fast.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alignflow.config import LoraParams, SFTParams
from alignflow.data.formatting import IGNORE_INDEX
from alignflow.errors import ConfigError
from alignflow.models.loading import load_pretrained
from alignflow.training.common import train_with_plain_attention
from alignflow.training.packing import PackedCollator, packs_correctly

if TYPE_CHECKING:
    from peft import LoraConfig, PeftModel
    from transformers import BitsAndBytesConfig, DataCollatorForSeq2Seq, PreTrainedModel

SFT_CARD = "alignflow.json"
"""Written beside the SFT outputs: how to load them (tuning, adapter or not)."""


def sft_collator(tokenizer) -> DataCollatorForSeq2Seq:
    """Pads input_ids with the pad token and labels with IGNORE_INDEX, per batch (nothing is padded on disk)."""
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=IGNORE_INDEX)


def training_collator(model, tokenizer, params: SFTParams) -> PackedCollator | DataCollatorForSeq2Seq:
    """Packed rows where `params.packing` asks and the model keeps packed examples apart, else padded rows."""
    if params.packing and params.tuning != "prompt_tuning":
        if packs_correctly(model):
            return PackedCollator(tokenizer.pad_token_id)
        print("sft: packing: the model's attention mixes packed examples, so batches are padded instead")
    return sft_collator(tokenizer)


def linear_layer_names(model) -> list[str]:
    import torch

    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) or type(module).__name__.startswith("Linear")
        }
    )


def lora_config(model, lora: LoraParams, task_type: str, trainable_tokens: list[int] | None = None) -> LoraConfig:
    from peft import LoraConfig

    available = linear_layer_names(model)
    missing = [name for name in lora.target_modules if name not in available]
    if missing:
        raise ConfigError(
            f"lora.target_modules: {missing} not in the model; its linear layers are: {', '.join(available)}"
        )
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        task_type=task_type,
        trainable_token_indices={"embed_tokens": trainable_tokens} if trainable_tokens else None,
    )


def quantization_config() -> BitsAndBytesConfig:
    """4-bit NF4 with double quantization; fails clearly where bitsandbytes cannot run."""
    import torch
    from transformers import BitsAndBytesConfig

    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError("sft.tuning: qlora needs bitsandbytes (pip install bitsandbytes), or use tuning: lora")
    try:
        import bitsandbytes.functional as bnbf

        bnbf.quantize_4bit(torch.randn(64, 64, device="cuda" if torch.cuda.is_available() else "cpu"), quant_type="nf4")
    except Exception as exc:
        raise ConfigError(
            f"sft.tuning: qlora: bitsandbytes cannot quantize on this device ({exc}); use tuning: lora"
        ) from None
    compute = torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute
    )


def _load_base(base_dir: Path, tokenizer, quantized: bool):
    from transformers import AutoModelForCausalLM

    model = load_pretrained(
        AutoModelForCausalLM, base_dir, quantization_config=quantization_config() if quantized else None
    )
    added = list(range(model.get_input_embeddings().num_embeddings, len(tokenizer)))
    if added:  # marker tokens added by the tokenize stage get (trained) embeddings
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, added


def build_sft_model(base_dir: Path, tokenizer, params: SFTParams) -> PeftModel | PreTrainedModel:
    """The model to train: a peft model (lora/qlora/prompt_tuning) or the full model with frozen lower layers;
    with tuning none, the base model as the later stages load it."""
    from peft import PromptTuningConfig, get_peft_model, prepare_model_for_kbit_training

    model, added = _load_base(base_dir, tokenizer, quantized=params.tuning == "qlora")
    if params.tuning == "none":
        return model
    train_with_plain_attention(model)
    if params.tuning in ("lora", "qlora"):
        if params.tuning == "qlora":
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        return get_peft_model(model, lora_config(model, params.lora, "CAUSAL_LM", added))
    if params.tuning == "prompt_tuning":
        return get_peft_model(
            model, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=params.num_virtual_tokens)
        )
    freeze_lowest_layers(model, params.freeze_layers)
    return model


def freeze_lowest_layers(model, count: int) -> None:
    """Freeze the input embeddings and the first `count` transformer blocks (full fine-tune only)."""
    if count <= 0:
        return
    layers = model.get_decoder().layers
    if count > len(layers):
        raise ConfigError(f"sft.freeze_layers: {count} but the model has {len(layers)} layers")
    for module in [model.get_input_embeddings(), *layers[:count]]:
        for parameter in module.parameters():
            parameter.requires_grad = False


def save_sft_outputs(model, tokenizer, params: SFTParams, base_dir: Path, out_dir: Path) -> None:
    """out_dir/model: a plain merged model (+ tokenizer); out_dir/adapter: the peft adapter when there is one.

    QLoRA adapters are merged into a full-precision reload of the base, not into 4-bit weights.
    Prompt tuning cannot be merged: model/ is the base and the card says to apply the adapter.
    """
    from peft import PeftModel

    model_dir = out_dir / "model"
    if isinstance(model, PeftModel):
        model.save_pretrained(out_dir / "adapter")
        _sort_target_modules(out_dir / "adapter" / "adapter_config.json")
        if params.tuning == "qlora":
            base, _ = _load_base(base_dir, tokenizer, quantized=False)
            merged = PeftModel.from_pretrained(base, out_dir / "adapter").merge_and_unload()
        elif params.tuning == "prompt_tuning":
            merged = model.get_base_model()
        else:
            merged = model.merge_and_unload()
    else:
        merged = model
    merged.save_pretrained(model_dir, safe_serialization=True)
    tokenizer.save_pretrained(model_dir)
    card = {"tuning": params.tuning, "needs_adapter": params.tuning == "prompt_tuning"}
    (out_dir / SFT_CARD).write_text(json.dumps(card, indent=1))


def _sort_target_modules(config_file: Path) -> None:
    """PEFT writes target_modules from a set, in an order that changes with Python's hash seed, so the same
    adapter would hash differently in every run (and DVC would see a new models/sft); sort it."""
    config = json.loads(config_file.read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def mergeable_sft_model(sft_dir: Path, stage: str) -> PreTrainedModel:
    """The merged SFT model to align further (with the attention kernel we train with). A prompt-tuned SFT model
    (an unmergeable soft prompt) is refused."""
    card = json.loads((sft_dir / SFT_CARD).read_text())
    if card["needs_adapter"]:
        raise ConfigError(
            f"{stage}: the SFT model is prompt-tuned (an unmergeable soft prompt); use sft.tuning lora, qlora "
            "or full before aligning it"
        )
    return train_with_plain_attention(load_sft_model(sft_dir))


def trainable_policy(sft_dir: Path, tuning: str, lora: LoraParams) -> PeftModel | PreTrainedModel:
    """The SFT model ready for RL: with a fresh LoRA adapter (`tuning: lora`; disabling it gives the reference
    policy) or as is (`full`)."""
    from peft import get_peft_model

    lm = mergeable_sft_model(sft_dir, "ppo")
    return get_peft_model(lm, lora_config(lm, lora, "CAUSAL_LM")) if tuning == "lora" else lm


def load_sft_model(sft_dir: Path, **kwargs: Any) -> PeftModel | PreTrainedModel:
    """The SFT policy as saved by save_sft_outputs, ready for generation or further training."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    card = json.loads((sft_dir / SFT_CARD).read_text())
    model = load_pretrained(AutoModelForCausalLM, sft_dir / "model", **kwargs)
    return load_pretrained(PeftModel, model, sft_dir / "adapter") if card["needs_adapter"] else model
