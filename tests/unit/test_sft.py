"""SFT: dynamic padding, every tuning trains, wrong LoRA targets are named, and Trainer resume is exact."""

from __future__ import annotations

import json

import pytest
import torch
from datasets import Dataset

from alignflow.config import LoraParams, SFTParams
from alignflow.errors import ConfigError
from alignflow.training.common import last_checkpoint, training_arguments
from alignflow.training.sft import build_sft_model, load_sft_model, save_sft_outputs, sft_collator, trainable_policy


@pytest.fixture(scope="module")
def base(tiny_lm, tmp_path_factory):
    lm, tokenizer = tiny_lm
    folder = tmp_path_factory.mktemp("base")
    lm.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, tokenizer


def examples(tokenizer, count=16):
    rows = []
    for i in range(count):
        prompt = tokenizer(f"Question {i} about tea?")["input_ids"]
        answer = tokenizer(" Steep it for three minutes." * (1 + i % 3))["input_ids"]
        rows.append({"input_ids": prompt + answer, "labels": [-100] * len(prompt) + answer})
    return Dataset.from_list(rows)


def test_collator_pads_each_batch_to_its_longest_example(tiny_lm):
    tokenizer = tiny_lm[1]
    batch = sft_collator(tokenizer)(
        [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, tokenizer.pad_token_id, tokenizer.pad_token_id]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


@pytest.mark.parametrize("tuning", ["lora", "qlora", "full", "prompt_tuning"])
def test_every_tuning_trains_and_saves_a_loadable_model(base, tuning, tmp_path):
    from transformers import Trainer

    folder, tokenizer = base
    params = SFTParams(
        tuning=tuning,
        max_steps=3,
        learning_rate=1e-2,
        batch_size=4,
        eval_steps=0,
        save_steps=100,
        logging_steps=1,
        freeze_layers=1 if tuning == "full" else 0,
    )
    model = build_sft_model(folder, tokenizer, params)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    args = training_arguments(params, tmp_path / "ckpt", seed=0, has_eval=False)
    Trainer(model=model, args=args, train_dataset=examples(tokenizer), data_collator=sft_collator(tokenizer)).train()
    changed = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert changed, "training changed no trainable weight"
    if tuning == "full":
        assert not any(p.requires_grad for p in model.model.layers[0].parameters())
    save_sft_outputs(model, tokenizer, params, folder, tmp_path / "out")
    reloaded = load_sft_model(tmp_path / "out")
    assert reloaded(input_ids=torch.tensor([[1, 2, 3]])).logits.shape[-1] == len(tokenizer)
    if tuning in ("lora", "qlora"):  # written in one order whatever Python's hash seed (PEFT keeps them in a set)
        targets = json.loads((tmp_path / "out/adapter/adapter_config.json").read_text())["target_modules"]
        assert targets == sorted(targets) == sorted(params.lora.target_modules)
    assert_ready_for_rl(tmp_path / "out", reloaded, prompt_tuned=tuning == "prompt_tuning")


def assert_ready_for_rl(sft_dir, sft_model, prompt_tuned):
    """RL starts from the SFT weights: a fresh LoRA adapter changes nothing until trained (and disabling it is the
    reference), `full` is the SFT model itself; a soft prompt cannot be merged, so it is refused by name."""
    from peft import PeftModel

    if prompt_tuned:
        with pytest.raises(ConfigError, match="prompt-tuned"):
            trainable_policy(sft_dir, "lora", LoraParams())
        return
    ids = torch.tensor([[1, 2, 3]])
    expected = sft_model(input_ids=ids).logits
    adapted = trainable_policy(sft_dir, "lora", LoraParams())
    assert isinstance(adapted, PeftModel) and any(p.requires_grad for p in adapted.parameters())
    torch.testing.assert_close(adapted(input_ids=ids).logits, expected)
    full = trainable_policy(sft_dir, "full", LoraParams())
    assert not isinstance(full, PeftModel)
    torch.testing.assert_close(full(input_ids=ids).logits, expected)


def test_tuning_none_saves_the_base_model_as_the_sft_model(base, tiny_lm, tmp_path):
    folder, tokenizer = base
    params = SFTParams(tuning="none")
    save_sft_outputs(build_sft_model(folder, tokenizer, params), tokenizer, params, folder, tmp_path / "out")
    reloaded, ids = load_sft_model(tmp_path / "out"), torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(reloaded(input_ids=ids).logits, tiny_lm[0](input_ids=ids).logits)
    assert not (tmp_path / "out/adapter").exists()
    assert_ready_for_rl(tmp_path / "out", reloaded, prompt_tuned=False)


def test_unknown_lora_target_lists_the_models_layers(base):
    folder, tokenizer = base
    with pytest.raises(ConfigError, match=r"\['qkv'\] not in the model; its linear layers are: .*q_proj.*v_proj"):
        build_sft_model(folder, tokenizer, SFTParams(lora=LoraParams(target_modules=("qkv",))))


def test_trainer_resume_matches_an_uninterrupted_run(base, tmp_path):
    from transformers import Trainer, TrainerCallback, set_seed

    folder, tokenizer = base
    params = SFTParams(
        tuning="lora", max_steps=6, learning_rate=5e-3, batch_size=4, eval_steps=0, save_steps=3, logging_steps=1
    )
    data = examples(tokenizer)

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            control.should_training_stop = state.global_step >= 3

    def train(output, resume=None, callbacks=()):
        set_seed(0)
        model = build_sft_model(folder, tokenizer, params)
        trainer = Trainer(
            model=model,
            args=training_arguments(params, output, seed=0, has_eval=False),
            train_dataset=data,
            data_collator=sft_collator(tokenizer),
            callbacks=list(callbacks),
        )
        trainer.train(resume_from_checkpoint=resume)
        return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    uninterrupted = train(tmp_path / "a")
    train(tmp_path / "b", callbacks=[StopAt()])
    assert last_checkpoint(tmp_path / "b").endswith("checkpoint-3")
    resumed = train(tmp_path / "b", resume=last_checkpoint(tmp_path / "b"))
    assert all(torch.allclose(resumed[n], uninterrupted[n], atol=1e-6) for n in uninterrupted)
