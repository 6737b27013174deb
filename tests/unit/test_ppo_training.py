"""PPO behaviour on a tiny model with a rule-based reward: it learns, KL is held back, and it resumes exactly."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from alignflow.config import PPOParams, VerifierParams
from alignflow.errors import ConfigError
from alignflow.rl.ppo import PolicyGradientTrainer
from alignflow.stages.align import update_summary
from alignflow.training.common import prepare_checkpoint_dir

TARGET_WORDS = ["Ġthe", "Ġwater", "Ġand", "Ġa", "Ġto"]
QUESTIONS = ["How do I keep basil?", "Why is the sky blue?", "My bike squeaks.", "How can I learn words?"]


@pytest.fixture(scope="module")
def setup(tiny_lm):
    lm, tokenizer = tiny_lm
    target = {tokenizer.convert_tokens_to_ids(t) for t in TARGET_WORDS}

    def count_reward(prompts, responses):
        """Rule-based reward: how many target tokens the response contains."""
        return torch.tensor([float(sum(i in target for i in tokenizer(r)["input_ids"])) for r in responses])

    prompts = [
        {
            "prompt": q,
            "input_ids": tokenizer(
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False
                )
            )["input_ids"],
        }
        for q in QUESTIONS * 4
    ]
    return lm, tokenizer, count_reward, prompts


LORA_RUN = dict(
    updates=2,
    batch_size=4,
    minibatch_size=2,
    max_new_tokens=8,
    learning_rate=1e-2,
    advantage="gae",
    samples_per_prompt=1,
    unfinished_penalty=0.0,
    mixed_precision="no",
)


SHORT_RUN = dict(batch_size=4, minibatch_size=4, ppo_epochs=1, max_new_tokens=4, min_new_tokens=4)
"""The fewest tokens an update can train on: for tests of what is kept, not of what is learned."""


def trainer(setup, **overrides):
    lm, tokenizer, reward, prompts = setup
    params = PPOParams(
        **{
            **dict(
                tuning="full",
                updates=30,
                batch_size=8,
                minibatch_size=4,
                ppo_epochs=2,
                learning_rate=3e-3,
                max_new_tokens=16,
                min_new_tokens=16,
                kl_coef=0.1,
                normalise_reward=False,
                reward_clip=None,
                advantage="gae",
                samples_per_prompt=1,
                unfinished_penalty=0.0,
                mixed_precision="no",
            ),
            **overrides,
        }
    )
    return PolicyGradientTrainer(copy.deepcopy(lm), tokenizer, reward, prompts, params, stop_token="<|im_end|>", seed=0)


def mean(history, key, part):
    values = [h[key] for h in history]
    return sum(values[part]) / len(values[part])


@pytest.mark.slow  # tens of seconds: out of the quick loop, in every full run
def test_ppo_raises_reward_while_kl_penalty_bounds_drift(setup):
    history = trainer(setup).train()
    start, end = mean(history, "reward_mean", slice(0, 5)), mean(history, "reward_mean", slice(-5, None))
    assert end > 3 * start and end - start > 1.0
    unpenalised = trainer(setup, kl_coef=0.0).train()
    assert mean(history, "kl", slice(-5, None)) < 0.75 * mean(unpenalised, "kl", slice(-5, None))
    assert all(0 <= h["clipfrac"] <= 1 and h["entropy"] > 0 for h in history)


@pytest.mark.slow  # tens of seconds: out of the quick loop, in every full run
def test_resume_continues_from_checkpoint_and_matches_uninterrupted_run(setup, tmp_path):
    overrides = dict(updates=8, checkpoint_every=2)
    uninterrupted = trainer(setup, **overrides)
    uninterrupted.train()

    first = trainer(setup, **overrides)
    first.train(tmp_path, stop_after=5)
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-5"]
    resumed = trainer(setup, **overrides)
    seen = []
    resumed.train(tmp_path, resume=True, on_update=lambda update, stats, texts: seen.append(update))
    assert seen == [6, 7, 8]
    final, expected = resumed._trainable_state(), uninterrupted._trainable_state()
    assert all(torch.allclose(final[k], expected[k], atol=1e-5) for k in expected)
    assert [h["reward_mean"] for h in resumed.history] == pytest.approx(
        [h["reward_mean"] for h in uninterrupted.history]
    )


def test_one_step_updates_reuse_the_rollout_forward_pass_and_match_recomputing_it(setup):
    overrides = dict(updates=2, minibatch_size=8, ppo_epochs=1, advantage="rloo", samples_per_prompt=4)
    initial = trainer(setup)._trainable_state()
    fused = trainer(setup, **overrides)
    assert fused.fused
    fused.train()
    recomputed = trainer(setup, **overrides)  # built after the first has trained: each seeds the global RNG
    recomputed.fused = False
    recomputed.train()
    final, expected = fused._trainable_state(), recomputed._trainable_state()
    assert any(not torch.equal(final[k], initial[k]) for k in final)  # it trained
    assert all(torch.allclose(final[k], expected[k], atol=1e-6) for k in expected)
    assert all(h["clipfrac"] == 0 and abs(h["approx_kl"]) < 1e-6 for h in fused.history)


def test_a_lora_policy_takes_the_same_one_step_update_fused_or_recomputed(setup):
    fused = lora_trainer(setup, minibatch_size=4)
    assert fused.fused
    fused.train()
    recomputed = lora_trainer(setup, minibatch_size=4)
    recomputed.fused = False
    recomputed.train()
    final, expected = fused._trainable_state(), recomputed._trainable_state()
    assert final.keys() == expected.keys() and any("lora_" in k for k in final)
    assert all(torch.allclose(final[k], expected[k], atol=1e-6) for k in expected)


def saved_for_backward_bytes(trainer) -> int:
    """Bytes the policy's forward pass on a rollout holds for the backward pass (what the align stage's peak is)."""
    rollout, _ = trainer.rollout(trainer._batch_prompts(0))
    held = []

    def keep(tensor):
        held.append(tensor.numel() * tensor.element_size())
        return tensor

    policy = trainer._no_dropout()
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor), trainer.accelerator.autocast():
        policy(policy.pack(rollout.samples), temperature=1.0)
    return sum(held)


def test_gradient_checkpointing_holds_less_and_takes_the_same_updates_bit_for_bit(setup):
    overrides = dict(minibatch_size=4, max_new_tokens=16, min_new_tokens=16)
    assert saved_for_backward_bytes(lora_trainer(setup, **overrides)) < 0.5 * saved_for_backward_bytes(
        lora_trainer(setup, **overrides, gradient_checkpointing=False)
    )
    runs = []
    for on in (True, False):  # each built after the other has trained: each seeds the global RNG
        runs.append(lora_trainer(setup, **overrides, gradient_checkpointing=on))
        runs[-1].train()
    final, expected = (run._trainable_state() for run in runs)
    assert final.keys() == expected.keys() and all(torch.equal(final[k], expected[k]) for k in expected)
    assert [h["policy_loss"] for h in runs[0].history] == [h["policy_loss"] for h in runs[1].history]


@pytest.mark.parametrize("dropout", [0.1, 0.0])
def test_gradient_checkpointing_is_left_off_where_layers_drop_out_in_their_own_forward_pass(dropout):
    """OPT applies dropout in its decoder layer's forward pass: flagging the layer as training, which transformers
    needs to checkpoint it, would drop out during PPO's eval-mode passes. Without dropout it is checkpointed."""
    from transformers import OPTConfig, OPTForCausalLM

    from alignflow.rl.ppo import checkpointed_layers

    opt = OPTForCausalLM(
        OPTConfig(
            num_hidden_layers=2,
            hidden_size=32,
            num_attention_heads=2,
            ffn_dim=64,
            word_embed_proj_dim=32,
            dropout=dropout,
        )
    )
    random_state = torch.get_rng_state()
    layers = checkpointed_layers(opt)
    assert torch.equal(torch.get_rng_state(), random_state)  # the check draws nothing from the run's random state
    assert len(layers) == (0 if dropout else 2)


def test_a_trainer_in_another_precision_earlier_in_the_process_does_not_block_ppo(setup, tmp_path):
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), bf16=True, use_cpu=True, report_to="none")
    Trainer(model=copy.deepcopy(setup[0]), args=args)  # sets accelerate's shared state to bf16, as SFT would
    history = trainer(
        setup, updates=1, batch_size=4, minibatch_size=4, ppo_epochs=1, max_new_tokens=4, min_new_tokens=4
    ).train()
    assert len(history) == 1


def test_checkpoints_hold_no_pickled_code_and_a_half_written_one_is_ignored(setup, tmp_path):
    run = trainer(setup, updates=2, checkpoint_every=1)
    run.train(tmp_path)
    newest = tmp_path / "checkpoint-2"
    assert {f.name for f in newest.iterdir()} == {"trainable.safetensors", "optimizer.pt", "state.json", "rng-0.json"}
    torch.load(newest / "optimizer.pt", weights_only=True)
    partial = tmp_path / "checkpoint-3"  # what a kill before the rename would leave, had it been named so
    partial.mkdir()
    (partial / "trainable.safetensors").write_bytes(b"cut short")
    resumed = trainer(setup, updates=2, checkpoint_every=1)
    resumed.load_checkpoint(tmp_path)
    assert resumed.update == 2


def test_lora_policy_uses_disabled_adapter_as_reference(setup):
    from peft import LoraConfig, get_peft_model

    lm, tokenizer, reward, prompts = setup
    torch.manual_seed(0)  # the adapter's initial weights, the same for every trainer built here
    peft_lm = get_peft_model(
        copy.deepcopy(lm), LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    )
    ppo = PolicyGradientTrainer(
        peft_lm,
        tokenizer,
        reward,
        prompts,
        PPOParams(**LORA_RUN),
        stop_token="<|im_end|>",
        seed=0,
    )
    history = ppo.train()
    assert ppo.reference is None and len(history) == 2 and history[0]["kl"] == pytest.approx(0, abs=1e-5)
    merged, _ = ppo.trained_model()
    assert not any("lora" in name for name, _ in merged.named_parameters())


def test_batch_sizes_that_do_not_divide_are_rejected():
    with pytest.raises(ConfigError, match=r"ppo.batch_size \(6\) must be a multiple of ppo.minibatch_size \(4\)"):
        PPOParams(batch_size=6, minibatch_size=4, samples_per_prompt=2)


def test_checkpoint_from_different_params_is_refused(tmp_path):
    prepare_checkpoint_dir(tmp_path / "ppo", {"ppo.learning_rate": 1e-5, "ppo.updates": 20})
    (tmp_path / "ppo" / "checkpoint-5").mkdir()
    assert prepare_checkpoint_dir(tmp_path / "ppo", {"ppo.learning_rate": 1e-5, "ppo.updates": 20}) is True
    with pytest.raises(ConfigError, match=r"ppo.learning_rate=1e-05, but params now say 0.0001"):
        prepare_checkpoint_dir(tmp_path / "ppo", {"ppo.learning_rate": 1e-4, "ppo.updates": 20})


@pytest.mark.slow
@pytest.mark.parametrize("advantage", ["rloo", "grpo"])
def test_critic_free_estimators_raise_reward(setup, advantage):
    history = trainer(setup, advantage=advantage, samples_per_prompt=4).train()
    start, end = mean(history, "reward_mean", slice(0, 5)), mean(history, "reward_mean", slice(-5, None))
    assert end > 2 * start and end - start > 1.0
    assert "value_loss" not in history[-1]


def test_unfinished_responses_are_counted_and_penalised(setup):
    stats = trainer(setup, updates=1, min_new_tokens=4, unfinished_penalty=2.0).train()[0]
    assert 0 <= stats["unfinished"] <= 1
    finished_only = trainer(setup, updates=1, min_new_tokens=4, unfinished_penalty=0.0).train()[0]
    assert stats["score_mean"] == pytest.approx(finished_only["score_mean"] - 2.0 * stats["unfinished"], abs=1e-4)


def lora_trainer(setup, **overrides):
    from peft import LoraConfig, get_peft_model

    lm, tokenizer, reward, prompts = setup
    torch.manual_seed(0)  # the adapter's initial weights, the same for every trainer built here
    peft_lm = get_peft_model(
        copy.deepcopy(lm),
        LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_lora_weights=False),
    )
    params = PPOParams(**{**LORA_RUN, **overrides})
    return PolicyGradientTrainer(peft_lm, tokenizer, reward, prompts, params, stop_token="<|im_end|>", seed=0)


def test_sampling_with_the_folded_adapter_draws_what_the_adapter_model_draws(setup):
    from alignflow.rl.sampling import sample

    ppo = lora_trainer(setup, sampling_dtype="float32")
    lm = ppo.accelerator.unwrap_model(ppo.policy).lm
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    ids = [p["input_ids"] for p in setup[3][:4]]
    torch.manual_seed(1)
    plain = sample(lm, setup[1], ids, ppo.stop_id, 8)
    with ppo.sampling_model() as merged:
        torch.manual_seed(1)
        folded = sample(merged, setup[1], ids, ppo.stop_id, 8)
    assert torch.equal(plain.sequences, folded.sequences)
    assert all(torch.equal(before[k], v) for k, v in lm.state_dict().items())  # swapped back, not unmerged


def test_the_bf16_sampler_holds_the_policy_or_the_reference_weights(setup):
    """The rollout sampler is a bf16 copy of the merged policy (or, for reference=True, of the SFT model); the
    trainable weights are left as they were."""
    ppo = lora_trainer(setup, sampling_dtype="bfloat16")
    lm = ppo.accelerator.unwrap_model(ppo.policy).lm
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    with torch.no_grad():
        merged = copy.deepcopy(lm).merge_and_unload().state_dict()
    with ppo.sampling_model() as sampler:
        weights = sampler.state_dict()
        assert all(w.dtype == torch.bfloat16 for w in weights.values())
        assert all(torch.allclose(weights[k].float(), merged[k], rtol=1e-2, atol=1e-4) for k in weights)
    with ppo.sampling_model(reference=True) as sampler:
        reference = setup[0].state_dict()
        assert all(torch.equal(w, reference[k].to(torch.bfloat16)) for k, w in sampler.state_dict().items())
    assert all(torch.equal(before[k], v) for k, v in lm.state_dict().items())


@pytest.mark.slow  # tens of seconds: out of the quick loop, in every full run
def test_a_probe_records_the_curve_without_changing_training(setup):
    calls = []

    def probe(lm):
        calls.append(lm)
        torch.rand(100)  # consumes random numbers, as sampling does
        return {"curve_win_rate": 0.5}

    probed = trainer(setup, updates=4, curve_every=2)
    history = probed.train(probe=probe)
    assert len(calls) == 2 and ["curve_win_rate" in h for h in history] == [False, True, False, True]
    plain = trainer(setup, updates=4, curve_every=2)
    plain.train()
    final, expected = probed._trainable_state(), plain._trainable_state()
    assert all(torch.equal(final[k], expected[k]) for k in expected)


def test_sampling_drops_finished_rows_without_changing_what_the_others_generate(setup):
    """Near-zero temperature makes sampling greedy: batched decoding (rows leave as they stop) must match
    transformers' own greedy generate for every prompt, whatever its batch mates do."""
    from alignflow.rl.sampling import pad_left, sample

    lm, tokenizer, _, prompts = setup
    stop = tokenizer.convert_tokens_to_ids("<|im_end|>")
    ids = [p["input_ids"] for p in prompts[:4]]
    batched = sample(lm, tokenizer, ids, stop, 12, temperature=1e-6)
    for row, prompt in enumerate(ids):
        queries, mask = pad_left([prompt], tokenizer.pad_token_id)
        greedy = lm.generate(
            input_ids=queries,
            attention_mask=mask,
            do_sample=False,
            max_new_tokens=12,
            eos_token_id=stop,
            pad_token_id=tokenizer.pad_token_id,
        )[0, len(prompt) :]
        length = int(batched.mask[row].sum())
        assert batched.responses[row, :length].tolist() == greedy[:length].tolist()


@pytest.mark.slow  # tens of seconds: out of the quick loop, in every full run
def test_a_verifier_alone_trains_the_policy_towards_its_rule(setup, tmp_path, monkeypatch):
    """No reward model: a user's verifier, named by dotted path, is the whole reward, and its mean is logged."""
    (tmp_path / "word_rule.py").write_text(
        "def share(response, record):\n"
        "    found = sum(response.count(word) for word in ('the', 'water', 'and'))\n"
        "    return min(1.0, found / 4)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    rule = VerifierParams("word_rule:share", weight=10.0)  # on the scale of the count reward the others train on
    history = trainer(setup, reward_model_weight=0.0, verifiers=(rule,)).train()
    assert "reward_mean" not in history[0]
    start, end = mean(history, "verifier_share", slice(0, 5)), mean(history, "verifier_share", slice(-5, None))
    assert end > start + 0.1, (start, end)
    summary = update_summary(history)  # what metrics/align.json reports: the sources this run has
    assert summary["final_verifier_share"] == pytest.approx(mean(history, "verifier_share", slice(-3, None)), abs=1e-4)
    assert summary["initial_verifier_share"] == round(history[0]["verifier_share"], 4)
    assert "final_score_mean" in summary and not any("reward_mean" in key for key in summary)


def scripted_probe(scores: list[float], verifier_means: list[float] | None = None):
    """A probe that reports these win rates (and verifier means) in turn (a constructed learning curve)."""
    remaining = list(zip(scores, verifier_means or [None] * len(scores)))

    def probe(lm) -> dict[str, float]:
        win_rate, verified = remaining.pop(0)
        return {"curve_win_rate": win_rate} | ({} if verified is None else {"curve_verifiers": verified})

    return probe


def snapshots(policy_trainer) -> tuple[dict[int, dict], callable]:
    """The trainable weights after every update, and the on_update callback that records them."""
    seen: dict[int, dict] = {}
    return seen, lambda update, stats, texts: seen.__setitem__(update, policy_trainer._trainable_state())


def test_keep_best_returns_the_update_the_dev_curve_ranks_highest(setup, tmp_path):
    """Probes after updates 2, 4, 6 score 0.6, 0.9, 0.7: the policy is update 4's, not the last one."""
    best = trainer(setup, updates=6, curve_every=2, checkpoint_every=2, **SHORT_RUN)
    seen, record = snapshots(best)
    best.train(probe=scripted_probe([0.6, 0.9, 0.7]), on_update=record)
    assert best.best.update == 4 and best.best.score == 0.9
    lm, _ = best.trained_model()
    kept = {name: weight for name, weight in lm.state_dict().items() if f"lm.{name}" in seen[4]}
    assert kept and all(torch.equal(weight, seen[4][f"lm.{name}"]) for name, weight in kept.items())
    assert any(not torch.equal(seen[4][key], seen[6][key]) for key in seen[4])  # update 6 differs: a real choice

    last = trainer(setup, updates=6, curve_every=2, keep="last", **SHORT_RUN)
    last.train(probe=scripted_probe([0.6, 0.9, 0.7]))
    assert last.best is None
    assert all(
        torch.equal(w, seen[6][f"lm.{n}"])
        for n, w in last.trained_model()[0].state_dict().items()
        if f"lm.{n}" in seen[6]
    )


def test_keep_best_ranks_by_the_verifiers_when_they_alone_reward_the_policy(setup):
    """The reward model likes update 2 best, the verifiers update 4: with no reward-model weight, 4 is kept."""
    rule, short = VerifierParams("regex", options={"pattern": "the"}), dict(SHORT_RUN, updates=6, curve_every=2)
    alone = trainer(setup, reward_model_weight=0.0, verifiers=(rule,), **short)
    alone.train(probe=scripted_probe([0.9, 0.6, 0.7], [0.2, 0.5, 0.4]))
    assert (alone.best.update, alone.best.score) == (4, 0.5)
    beside = trainer(setup, verifiers=(rule,), **short)  # the reward model still has a weight
    beside.train(probe=scripted_probe([0.9, 0.6, 0.7], [0.2, 0.5, 0.4]))
    assert (beside.best.update, beside.best.score) == (2, 0.9)


def test_the_dev_probe_reports_the_verifiers_mean_on_its_answers(setup):
    from alignflow.config import EvaluateParams
    from alignflow.evaluation.curve import AlignmentProbe
    from alignflow.evaluation.generation import generate
    from alignflow.verifiers.sources import RewardSources

    lm, tokenizer, _, prompts = setup
    dev, config, stop_id = prompts[:4], EvaluateParams(max_new_tokens=8), tokenizer.convert_tokens_to_ids("<|im_end|>")
    sources = RewardSources.load(0.0, (VerifierParams("regex", options={"pattern": "l"}),), "ppo")
    probe = AlignmentProbe(tokenizer, dev, {}, stop_id, config, seed=0, verifiers=sources)
    probe.set_reference(lm)
    drawn = generate(lm, tokenizer, [p["input_ids"] for p in dev], stop_id, 8, config.temperature, config.top_p, 4, 0)
    passed = ["l" in text for text in drawn.texts]
    assert 0 < sum(passed) < len(passed)  # the rule tells these answers apart
    assert probe(lm)["curve_verifiers"] == pytest.approx(sum(passed) / len(passed), abs=5e-5)
    assert "curve_verifiers" not in AlignmentProbe(tokenizer, dev, {}, stop_id, config, seed=0)(lm)


def test_keep_best_survives_an_interruption(setup, tmp_path):
    short = dict(SHORT_RUN, updates=6, curve_every=2)
    first = trainer(setup, checkpoint_every=2, **short)
    first.train(tmp_path, stop_after=5, probe=scripted_probe([0.6, 0.9]))  # killed after update 5
    resumed = trainer(setup, checkpoint_every=2, **short)
    resumed.train(tmp_path, resume=True, probe=scripted_probe([0.7]))
    assert (resumed.best.update, resumed.best.score) == (4, 0.9)
    uninterrupted = trainer(setup, **short)
    uninterrupted.train(probe=scripted_probe([0.6, 0.9, 0.7]))
    resumed_lm, expected_lm = resumed.trained_model()[0].state_dict(), uninterrupted.trained_model()[0].state_dict()
    assert all(torch.allclose(resumed_lm[k], expected_lm[k], atol=1e-5) for k in expected_lm)


def test_keep_best_needs_the_dev_probe():
    with pytest.raises(ConfigError, match="ppo.keep: best needs the dev-split probe"):
        PPOParams(curve_every=0)
    assert PPOParams(curve_every=0, keep="last").keep == "last"


def test_the_dev_split_is_held_out_of_training_and_align_never_reads_the_eval_prompts():
    import yaml

    from alignflow.stages.align import dev_split

    prompts = [{"id": index} for index in range(10)]
    pool, dev = dev_split(prompts, PPOParams(curve_prompts=3))
    assert [p["id"] for p in pool] == list(range(7)) and [p["id"] for p in dev] == [7, 8, 9]
    assert dev_split(prompts, PPOParams(curve_every=0, keep="last")) == (prompts, [])
    with pytest.raises(ConfigError, match="leaves none to train on"):
        dev_split(prompts[:3], PPOParams(curve_prompts=3))
    stages = yaml.safe_load((Path(__file__).parents[2] / "dvc.yaml").read_text())["stages"]
    assert not any("eval_prompts" in dep for dep in stages["align"]["deps"])
