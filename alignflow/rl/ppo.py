"""Our PPO trainer for causal LMs (TRL no longer ships one): rollout, score, KL-shaped rewards, GAE, clipped updates.

Policy = LM (+ LoRA adapter) with a value head on its last hidden state. Reference = the same LM with the
adapter disabled (LoRA) or a frozen copy (full). Built on accelerate, so `accelerate launch` runs it on
several processes (each samples its share of the batch; gradients are all-reduced). Every
`checkpoint_every` updates the trainable weights, optimizer, KL coefficient, RNG states and data
position are saved; `train` resumes from the newest checkpoint it is given.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import random
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from alignflow.config import PPOParams
from alignflow.data.formatting import Prompt, conversation
from alignflow.data.tokenize import prompt_record
from alignflow.errors import ConfigError
from alignflow.io import write_json
from alignflow.precision import mixed_precision, weights_dtype
from alignflow.rl import core
from alignflow.rl.best import BestUpdate, ranking_metric
from alignflow.rl.packed import PackedBatch, layout_of, pack_samples, token_outputs
from alignflow.rl.sampling import TOKENS_AT_ONCE, Samples, response_logprobs, sample
from alignflow.training.common import complete_checkpoints, sampling_attention, transformers_model
from alignflow.verifiers.sources import RewardSources, source_means

log = logging.getLogger(__name__)
CHECKPOINT_MARKER = "state.json"
"""Written last into a checkpoint, which is renamed into place only once complete."""

RewardFn = Callable[[Sequence[Prompt], Sequence[str]], torch.Tensor]
"""(prompts, responses) -> one scalar score per response; a prompt is its text or, when multi-turn, its turns."""


class PolicyWithValueHead(nn.Module):
    """A causal LM and a scalar value head reading its last hidden state."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm
        hidden = lm.config.hidden_size
        self.value_head = nn.Linear(hidden, 1)
        nn.init.normal_(self.value_head.weight, std=1 / np.sqrt(hidden + 1))
        nn.init.zeros_(self.value_head.bias)
        self.layout = layout_of(lm)

    def forward(
        self, batch: PackedBatch, temperature: float, entropy: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(log-prob, value[, entropy]) of each of `batch`'s response tokens. The logits stay inside: a prepared
        model's outputs come back in float32, and a float32 copy of (tokens, vocab) logits is what
        `ChosenLogprobs` exists to avoid."""
        logits, hidden = token_outputs(self.lm, batch, self.layout, hidden_states=True)
        logprobs = response_logprobs(logits, batch.tokens, temperature)
        with torch.no_grad():
            entropies = core.entropy_from_logits(logits.detach(), TOKENS_AT_ONCE) if entropy else None
        return logprobs, self.value_head(hidden).squeeze(-1), entropies

    def pack(self, samples: Samples, rows: torch.Tensor | None = None) -> PackedBatch:
        return pack_samples(samples, rows, self.layout.share_rows)


@dataclass
class Rollout:
    """Sampled responses and what the update needs about them (old log-probs, values, advantages, returns)."""

    samples: Samples
    logprobs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    live: tuple[torch.Tensor, torch.Tensor] | None = None
    """(log-probs, values) still attached to the autograd graph when the update is one step on the whole batch."""


class PolicyGradientTrainer:
    """Holds the models and optimizer; `train` runs updates and checkpoints. Pure algorithm lives in rl.core."""

    def __init__(
        self,
        lm: nn.Module,
        tokenizer,
        reward_fn: RewardFn,
        prompts: Sequence[dict],
        params: PPOParams,
        stop_token: str,
        seed: int,
        reward_stats: dict[str, float] | None = None,
    ):
        from accelerate import Accelerator
        from accelerate.state import AcceleratorState
        from peft import PeftModel

        # A Trainer run earlier in this process (SFT, the reward model) leaves accelerate's shared state set to its
        # precision, which Accelerator refuses to change; transformers' Trainer resets it the same way. The
        # processes' own state (a Ray or accelerate launch group) is kept.
        AcceleratorState._reset_state(reset_partial_state=False)
        self.accelerator = Accelerator(
            cpu=not torch.cuda.is_available(),
            mixed_precision=mixed_precision("ppo.mixed_precision", params.mixed_precision),
        )
        world = self.accelerator.num_processes
        local = params.batch_size // world
        if params.batch_size % world or local % params.minibatch_size or local % params.samples_per_prompt:
            raise ConfigError(
                f"ppo.batch_size ({params.batch_size}) split over {world} processes must be a multiple "
                f"of ppo.minibatch_size ({params.minibatch_size}) and ppo.samples_per_prompt "
                f"({params.samples_per_prompt})"
            )
        self.params, self.tokenizer, self.reward_fn, self.prompts, self.seed = (
            params,
            tokenizer,
            reward_fn,
            prompts,
            seed,
        )
        self.sources = RewardSources.load(params.reward_model_weight, params.verifiers, "ppo")
        self.stop_id = tokenizer.convert_tokens_to_ids(stop_token)
        if self.stop_id is None or self.stop_id == tokenizer.unk_token_id:
            raise ConfigError(f"ppo.stop_token {stop_token!r} is not a token of the policy's tokenizer")
        self.reward_stats = reward_stats if params.normalise_reward and reward_stats else None
        self.uses_adapter = isinstance(lm, PeftModel)
        self.reference = None if self.uses_adapter else copy.deepcopy(lm).eval().requires_grad_(False)
        set_seed(seed)
        policy = PolicyWithValueHead(lm)
        policy.value_head.to(next(lm.parameters()).dtype)
        policy.value_head.requires_grad_(params.advantage == "gae")  # a critic-free head gets no gradient, which
        # several processes (DDP) refuse
        trainable = [p for p in policy.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=params.learning_rate, eps=1e-5)
        self.checkpointed = checkpointed_layers(lm) if params.gradient_checkpointing else []
        self.policy, self.optimizer = self.accelerator.prepare(policy, optimizer)
        if self.reference is not None:
            self.reference.to(self.accelerator.device)
        self.sampler = sampler_copy(lm, weights_dtype("ppo.sampling_dtype", params.sampling_dtype))
        self.kl = core.AdaptiveKLController(params.kl_coef, params.kl_target, params.kl_horizon)
        self.fused = params.ppo_epochs == 1 and params.minibatch_size == local
        """One on-policy step per update: the rollout's forward pass (with gradients) is also the update's."""
        self.update = 0
        metric = ranking_metric(params.reward_model_weight, bool(params.verifiers))
        self.best = BestUpdate(metric) if params.keep == "best" else None
        """The update kept (`ppo.keep: best`), ranked by the probe's `metric`."""
        self.history: list[dict[str, float]] = []

    # -- data ---------------------------------------------------------------------------------
    def _batch_prompts(self, update: int) -> list[dict]:
        """This process's prompts for `update`, each repeated samples_per_prompt times (a group stays on one
        process); a seeded permutation per pass over the data, so the position is resumable."""
        group = self.params.samples_per_prompt
        size, count = self.params.batch_size // group, len(self.prompts)
        rows = []
        for k in range(update * size, (update + 1) * size):
            order = torch.randperm(count, generator=torch.Generator().manual_seed(self.seed + k // count))
            rows.append(self.prompts[int(order[k % count])])
        mine = rows[self.accelerator.process_index :: self.accelerator.num_processes]
        return [row for row in mine for _ in range(group)]

    @contextlib.contextmanager
    def sampling_model(self, reference: bool = False) -> Iterator[nn.Module]:
        """The policy LM (or with `reference`, the frozen SFT reference) for generation: a LoRA adapter folded into
        the weights (one matmul per layer instead of three), copied into the lower-precision sampler when
        `sampling_dtype` asks for one; with the attention kernel that decodes fastest."""
        with self._sampling_weights(reference) as lm, sampling_attention(lm):
            yield lm

    @contextlib.contextmanager
    def _sampling_weights(self, reference: bool) -> Iterator[nn.Module]:
        lm = self.accelerator.unwrap_model(self.policy).lm.eval()
        source = self.reference if reference and self.reference is not None else lm
        with_adapter = self.uses_adapter and not reference
        if self.sampler is not None:
            copy_weights(source, self.sampler, with_adapter)
            yield self.sampler
        elif with_adapter:
            with merged_adapter(lm):
                yield lm
        elif reference and self.uses_adapter:  # the base weights, without the adapter, are the SFT model
            with lm.disable_adapter():
                yield lm
        else:
            yield source

    # -- one update ---------------------------------------------------------------------------
    def rollout(self, rows: list[dict]) -> tuple[Rollout, dict[str, float]]:
        """Sample, score and compute advantages. Old log-probs come from the same eval-mode forward pass the
        update repeats, so the ratio starts at exactly 1; with `fused` that pass keeps its graph and is reused."""
        p = self.params
        with torch.no_grad(), self.sampling_model() as lm:
            drawn = sample(
                lm,
                self.tokenizer,
                [r["input_ids"] for r in rows],
                self.stop_id,
                p.max_new_tokens,
                p.min_new_tokens,
                p.temperature,
                p.top_p,
            )
        mask = drawn.mask
        scores, stats = self._scores(rows, drawn)

        policy = self._no_dropout()
        batch = policy.pack(drawn)
        with self.accelerator.autocast():
            with torch.set_grad_enabled(self.fused):  # the prepared model, so gradients sync across processes
                live_logprobs, live_values, entropy = self.policy(batch, p.temperature, entropy=True)
                live_logprobs, live_values = batch.scatter(live_logprobs), batch.scatter(live_values)
            logprobs, values = live_logprobs.detach(), live_values.detach()
            with torch.no_grad():
                if self.reference is None:
                    with policy.lm.disable_adapter():
                        ref_logits, _ = token_outputs(policy.lm, batch, policy.layout)
                else:
                    ref_logits, _ = token_outputs(self.reference, batch, policy.layout)
                ref_logprobs = batch.scatter(response_logprobs(ref_logits, batch.tokens, p.temperature))
        kl = core.kl_estimate(logprobs, ref_logprobs, p.kl_estimator) * mask
        if p.advantage == "gae":
            rewards = core.token_rewards(scores, kl, mask, self.kl.value)
            advantages, returns = core.gae(rewards, values.float(), mask, p.gamma, p.lam)
        else:
            per_response = core.group_advantages(
                core.sequence_returns(scores, kl, mask, self.kl.value), p.samples_per_prompt, p.advantage
            )
            advantages, returns = per_response[:, None] * mask, torch.zeros_like(mask)
        if p.whiten_advantages and p.advantage != "grpo":  # grpo is already normalised within each group
            advantages = core.whiten(advantages, mask)
        stats |= {
            "score_mean": scores.mean().item(),
            "kl": kl.sum(1).mean().item(),
            "response_length": mask.sum(1).mean().item(),
            "unfinished": 1 - drawn.finished.float().mean().item(),
            "kl_coef": self.kl.value,
            "entropy": entropy.mean().item(),
        }
        live = (live_logprobs, live_values) if self.fused else None
        return Rollout(drawn, logprobs, values, advantages, returns, live), stats

    def _scores(self, rows: list[dict], drawn: Samples) -> tuple[torch.Tensor, dict[str, float]]:
        """Each response's score (the reward model's, normalised and clipped, weighted, plus the verifiers'), less
        the unfinished penalty; and each source's mean, logged per update so a user sees which source moves."""
        p, mask, stats = self.params, drawn.mask, {}
        scores = torch.zeros(len(rows), device=mask.device)
        if self.sources.reward_model_weight:
            raw = self.reward_fn([conversation(r) for r in rows], drawn.texts).float().to(mask.device)
            scores = raw - p.length_penalty * mask.sum(1)
            if self.reward_stats:
                mean, std = self.reward_stats["mean"], self.reward_stats["std"]
                scores = core.normalise_scores(scores, mean, std, p.reward_clip)
            elif p.reward_clip:
                scores = scores.clamp(-p.reward_clip, p.reward_clip)
            stats |= {"reward_mean": raw.mean().item(), "reward_std": raw.std().item() if len(raw) > 1 else 0.0}
        if self.sources.verifiers:
            verified = self.sources.score(drawn.texts, [prompt_record(r) for r in rows])
            scores = torch.tensor(self.sources.mix(scores.tolist(), verified), device=mask.device)
            stats |= source_means(verified)
        return core.unfinished_penalty(scores, drawn.finished, p.unfinished_penalty), stats

    def optimise(self, rollout: Rollout) -> dict[str, float]:
        p, r, drawn = self.params, rollout, rollout.samples
        policy = self._no_dropout()  # old and new log-probs must differ only by the update
        totals: dict[str, list[float]] = {}
        for _ in range(p.ppo_epochs):
            for index in self._minibatches(len(drawn.sequences)):
                if r.live is not None:
                    logprobs, values = r.live
                    r.live = None  # its graph is freed by this step's backward
                else:
                    batch = policy.pack(drawn, index)
                    logprobs, values, _ = self.policy(batch, p.temperature)
                    logprobs, values = batch.scatter(logprobs), batch.scatter(values)
                mask = drawn.mask[index]
                pg_loss, pg_stats = core.policy_loss(
                    logprobs, r.logprobs[index], r.advantages[index], mask, p.clip_range
                )
                loss, vf_stats = pg_loss, {}
                if p.advantage == "gae":  # only GAE has a critic to train
                    vf_loss, vf_stats = core.value_loss(
                        values.float(), r.values[index], r.returns[index], mask, p.value_clip_range
                    )
                    loss = pg_loss + p.vf_coef * vf_loss
                    vf_stats["value_loss"] = vf_loss
                self.accelerator.backward(loss)
                self.accelerator.clip_grad_norm_(self.policy.parameters(), p.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad()
                for key, value in {"policy_loss": pg_loss, **pg_stats, **vf_stats}.items():
                    totals.setdefault(key, []).append(float(value.detach()) if torch.is_tensor(value) else float(value))
        return {key: float(np.mean(values)) for key, values in totals.items()}

    def _no_dropout(self) -> PolicyWithValueHead:
        """The policy in eval mode (no dropout), except for the flag transformers reads to checkpoint a layer: it
        checkpoints only layers in training mode, and the layers' own modules hold the dropout."""
        policy = self.accelerator.unwrap_model(self.policy).eval()
        for layer in self.checkpointed:
            layer.training = True
        return policy

    def _minibatches(self, count: int) -> list[torch.Tensor]:
        order = torch.randperm(count)  # drawn even when fused, so both paths leave the same random state
        return [torch.arange(count)] if self.fused else list(order.split(self.params.minibatch_size))

    def step(self) -> tuple[dict[str, float], list[str]]:
        rows = self._batch_prompts(self.update)
        rollout, stats = self.rollout(rows)
        texts = rollout.samples.texts
        stats.update(self.optimise(rollout))
        stats = {
            k: float(self.accelerator.reduce(torch.tensor(v, device=self.accelerator.device), "mean"))
            for k, v in stats.items()
        }
        self.kl.update(stats["kl"], self.params.batch_size)
        self.update += 1
        self.history.append(stats)
        return stats, texts

    # -- loop and checkpoints -----------------------------------------------------------------
    def train(
        self,
        checkpoint_dir: Path | None = None,
        resume: bool = False,
        stop_after: int | None = None,
        on_update: Callable[[int, dict[str, float], list[str]], None] | None = None,
        probe: Callable[[nn.Module], dict[str, float]] | None = None,
        on_checkpoint: Callable[[], None] | None = None,
    ) -> list[dict[str, float]]:
        """Run until `params.updates` (or `stop_after`, to simulate an interruption); checkpoint as configured.

        `probe(sampling_model)` runs every `params.curve_every` updates (and after the last); its numbers join that
        update's history. Random state is restored around it, so probing never changes the training trajectory.
        `on_checkpoint()` runs on every process after each checkpoint is complete.
        """
        if resume and checkpoint_dir is not None:
            self.load_checkpoint(checkpoint_dir)
        target = self.params.updates if stop_after is None else min(stop_after, self.params.updates)
        every = self.params.curve_every
        while self.update < target:
            stats, texts = self.step()
            if probe and every and (self.update % every == 0 or self.update == self.params.updates):
                state = rng_state()
                with torch.no_grad(), self.sampling_model() as lm:
                    stats.update(probe(lm))
                set_rng_state(state)
                if self.best is not None:
                    self.best.consider(self.update, stats, self._trainable_state)
            if on_update:
                on_update(self.update, stats, texts)
            if checkpoint_dir is not None and (
                self.update % self.params.checkpoint_every == 0 or self.update == target
            ):
                self.save_checkpoint(checkpoint_dir)
                if on_checkpoint:
                    on_checkpoint()
        return self.history

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        policy = self.accelerator.unwrap_model(self.policy)
        names = {name for name, p in policy.named_parameters() if p.requires_grad}
        return {k: v.detach().cpu().clone() for k, v in policy.state_dict().items() if k in names}

    def save_checkpoint(self, directory: Path) -> None:
        """Write `checkpoint-<update>` complete or not at all (built under a temporary name, then renamed), as
        safetensors and JSON plus the optimizer's plain tensors, so loading never unpickles code. The main
        process writes every process's random state, so no shared disk is needed."""
        from accelerate.utils import gather_object
        from safetensors.torch import save_file

        target, partial = directory / f"checkpoint-{self.update}", directory / f"tmp-checkpoint-{self.update}"
        states = gather_object([rng_to_json(rng_state())])
        if self.accelerator.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            for index, state in enumerate(states):
                write_json(partial / f"rng-{index}.json", state)
            save_file(self._trainable_state(), str(partial / "trainable.safetensors"))
            if self.best is not None:
                self.best.save(partial)
            torch.save(self.optimizer.state_dict(), partial / "optimizer.pt")
            write_json(
                partial / "state.json", {"update": self.update, "kl_coef": self.kl.value, "history": self.history}
            )
            shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)
            for old in complete_checkpoints(directory, CHECKPOINT_MARKER)[:-2]:
                shutil.rmtree(old)
        self.accelerator.wait_for_everyone()

    def load_checkpoint(self, directory: Path) -> None:
        from safetensors.torch import load_file

        found = complete_checkpoints(directory, CHECKPOINT_MARKER)
        if not found:
            return
        newest = found[-1]
        self.accelerator.unwrap_model(self.policy).load_state_dict(
            load_file(str(newest / "trainable.safetensors")), strict=False
        )
        self.optimizer.load_state_dict(torch.load(newest / "optimizer.pt", weights_only=True))
        state = json.loads((newest / "state.json").read_text())
        self.kl.value, self.update, self.history = state["kl_coef"], state["update"], state["history"]
        if self.best is not None:
            self.best.load(newest)
        set_rng_state(rng_from_json(json.loads((newest / f"rng-{self.accelerator.process_index}.json").read_text())))
        if self.accelerator.is_main_process:
            print(f"resuming from {newest} (update {self.update})", flush=True)

    def trained_model(self) -> tuple[nn.Module, nn.Module]:
        """(policy LM with any adapter merged, value head), at the best update with `keep: best`."""
        policy = self.accelerator.unwrap_model(self.policy)
        if self.best is not None and self.best.weights is not None:
            policy.load_state_dict(self.best.weights, strict=False)
        lm = policy.lm.merge_and_unload() if self.uses_adapter else policy.lm
        return lm, policy.value_head


@contextlib.contextmanager
def merged_adapter(lm: nn.Module) -> Iterator[nn.Module]:
    """A PEFT model whose LoRA layers run on base + delta weights, with the adapter path switched off. The merged
    weights are new tensors swapped in and the originals swapped back, never added and subtracted in place: in
    floating point W + d - d is not W, and that drift would move the frozen reference a little at every update."""
    from peft.tuners.lora import LoraLayer

    layers = [m for m in lm.modules() if isinstance(m, LoraLayer)]
    originals = [layer.get_base_layer().weight.data for layer in layers]
    with torch.no_grad():
        for layer, weight in zip(layers, originals):
            layer.get_base_layer().weight.data = weight + lora_delta(layer)
    try:
        with lm.disable_adapter():
            yield lm
    finally:
        for layer, weight in zip(layers, originals):
            layer.get_base_layer().weight.data = weight


def checkpointed_layers(lm: nn.Module) -> list[nn.Module]:
    """Turn on transformers' gradient checkpointing in `lm` (non-reentrant: the recomputation runs under the same
    autocast state, so the gradients are those of a held graph); returns the decoder layers it checkpoints. None
    where the model does not support it, or where a layer flagged as training would drop out: some architectures
    (OPT, Bloom) apply dropout in the layer's own forward pass, not in a submodule that stays in eval mode."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    model = transformers_model(lm)
    layers = [module for module in model.modules() if isinstance(module, GradientCheckpointingLayer)]
    if not getattr(model, "supports_gradient_checkpointing", False) or not layers:
        log.warning("ppo.gradient_checkpointing: %s does not support it; activations are held", type(model).__name__)
        return []
    if not flagged_layers_keep_eval_outputs(model, layers):
        log.warning(
            "ppo.gradient_checkpointing: %s drops out inside its layers; activations are held", type(model).__name__
        )
        return []
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    return layers


def flagged_layers_keep_eval_outputs(model: nn.Module, layers: list[nn.Module]) -> bool:
    """Whether `model` in eval mode gives the same logits with `layers` flagged as training (random state kept)."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (1, 8), generator=generator).to(next(model.parameters()).device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            expected = model(input_ids=ids, use_cache=False).logits
            for layer in layers:
                layer.training = True
            flagged = model(input_ids=ids, use_cache=False).logits
    finally:
        model.train(was_training)
    return torch.equal(expected, flagged)


def sampler_copy(lm: nn.Module, dtype: str) -> nn.Module | None:
    """A frozen copy of the plain LM in `dtype` for decoding, or None when sampling uses the policy itself."""
    if dtype == "float32":
        return None
    from transformers import AutoModelForCausalLM

    sampler = AutoModelForCausalLM.from_config(lm.config, dtype=getattr(torch, dtype))
    return sampler.to(next(lm.parameters()).device).eval().requires_grad_(False)


@torch.no_grad()
def copy_weights(source: nn.Module, target: nn.Module, with_adapter: bool) -> None:
    """Copy a plain LM's or a PEFT model's base weights (plus the LoRA deltas `with_adapter`) into `target`, the same
    architecture in its own dtype. The source is read, never merged in place, so training weights do not drift."""
    from peft.tuners.lora import LoraLayer

    weights = {
        name.removeprefix("base_model.model.").replace(".base_layer.", "."): tensor
        for name, tensor in source.state_dict().items()
        if "lora_" not in name
    }
    if with_adapter:
        for name, module in source.named_modules():
            if isinstance(module, LoraLayer):
                key = f"{name.removeprefix('base_model.model.')}.weight"
                weights[key] = weights[key] + lora_delta(module)
    for name, tensor in target.state_dict().items():
        tensor.copy_(weights[name])


def lora_delta(layer) -> torch.Tensor:
    """A LoRA layer's weight update: the sum of its active adapters' deltas."""
    return sum(layer.get_delta_weight(adapter) for adapter in layer.active_adapters)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def rng_to_json(state: dict) -> dict:
    name, keys, position, has_gauss, gauss = state["numpy"]
    return {
        "python": [state["python"][0], list(state["python"][1]), state["python"][2]],
        "numpy": [name, keys.tolist(), position, has_gauss, gauss],
        "torch": state["torch"].tolist(),
    }


def rng_from_json(state: dict) -> dict:
    version, internal, gauss_next = state["python"]
    name, keys, position, has_gauss, gauss = state["numpy"]
    return {
        "python": (version, tuple(internal), gauss_next),
        "numpy": (name, np.array(keys, dtype=np.uint32), position, has_gauss, gauss),
        "torch": torch.tensor(state["torch"], dtype=torch.uint8),
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
