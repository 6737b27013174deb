"""SFT's loss with the LM head and the log-softmax only where a label is.

A causal LM's forward pass multiplies every position's hidden state by the (vocabulary x hidden) head and the loss
takes a log-softmax over the whole vocabulary there, but SFT trains only on the reply: prompt, system and padding
positions carry no label, and their logits are computed only to be thrown away. Here the model returns its last
hidden states (the head runs on one position), and the head runs on the positions that predict a label: the same
loss and gradients as transformers' own causal-LM loss, for less arithmetic and memory
(`bench/sft_label_head.py` measures both, side by side).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer

IGNORE_INDEX = -100


def labelled_loss(
    model, inputs: dict[str, Any], num_items_in_batch: torch.Tensor | int | None = None, head: Any = None
) -> tuple[torch.Tensor, Any]:
    """(loss, model outputs): the mean token cross-entropy over labelled positions, or the sum over
    `num_items_in_batch` labels when the Trainer counts them across gradient-accumulation steps (as transformers'
    causal-LM loss does). `head` is the model's output layer (default: `model`'s own; a model wrapped for
    distributed training, as DDP wraps it, does not expose it)."""
    inputs = dict(inputs)
    labels = inputs.pop("labels")
    outputs = model(**inputs, output_hidden_states=True, logits_to_keep=1)
    targets = labels[:, 1:]
    kept = targets != IGNORE_INDEX
    hidden = outputs.hidden_states[-1][:, :-1][kept]
    logits = (head or model.get_output_embeddings())(hidden).float()
    loss = F.cross_entropy(logits, targets[kept], reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else kept.sum()
    if torch.is_tensor(count):
        count = count.to(loss.device)
    return loss / count, outputs


class LabelledPositionsTrainer(Trainer):
    """transformers' Trainer whose loss computes logits only at labelled positions (see the module docstring)."""

    def compute_loss(
        self, model, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        head = self.accelerator.unwrap_model(model).get_output_embeddings()
        loss, outputs = labelled_loss(model, inputs, num_items_in_batch, head)
        return (loss, {"loss": loss}) if return_outputs else loss
