"""Run by test_ppo_distributed under `accelerate launch --num_processes 2`: a few PPO updates on a tiny model."""

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import CORPUS  # noqa: E402

from alignflow.config import PPOParams  # noqa: E402
from alignflow.models.tiny import build_tiny_causal_lm  # noqa: E402
from alignflow.rl.ppo import PolicyGradientTrainer  # noqa: E402

out = Path(sys.argv[1])
lm, tokenizer = build_tiny_causal_lm(CORPUS, seed=0)
prompts = [{"prompt": q, "input_ids": tokenizer(q)["input_ids"]} for q in ["Tea?", "Bikes?", "Sleep?", "Rain?"] * 2]


def length_reward(prompts, responses):
    return torch.tensor([float(len(r)) / 10 for r in responses])


params = PPOParams(
    tuning="full",
    updates=3,
    batch_size=4,
    minibatch_size=2,
    max_new_tokens=6,
    learning_rate=1e-3,
    normalise_reward=False,
    checkpoint_every=3,
    advantage="gae",
    samples_per_prompt=1,
    unfinished_penalty=0.0,
    mixed_precision="no",
)
trainer = PolicyGradientTrainer(lm, tokenizer, length_reward, prompts, params, stop_token="<|im_end|>", seed=0)
history = trainer.train(out / "checkpoints")
weights = trainer.accelerator.unwrap_model(trainer.policy).value_head.weight.detach()
(out / f"rank-{trainer.accelerator.process_index}.json").write_text(
    json.dumps(
        {
            "world": trainer.accelerator.num_processes,
            "updates": len(history),
            "prompts_seen": len(trainer._batch_prompts(0)),
            "value_head_sum": float(weights.sum()),
        }
    )
)
