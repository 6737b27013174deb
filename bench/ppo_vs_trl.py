"""Benchmark: our PolicyGradientTrainer vs trl 1.12 `trl.experimental.ppo.PPOTrainer`: `python bench/ppo_vs_trl.py`.

Options: `[--updates 30] [--repeats 3] [--hidden 128] [--threads 1] [--out FILE.json]`. Both sides train the same tiny
Llama policy (full fine-tuning) against the same tiny reward model (LlamaForSequenceClassification, num_labels=1, same
tokenizer), loaded from one saved folder, on the same 64 chat-templated prompts with the same batch, minibatch, PPO
epochs, fixed response length, temperature, learning rate (constant, AdamW eps 1e-5, weight decay 0.01) and KL
coefficient, in fp32 with the same thread count. TRL 1.12 (the last TRL with PPO) is installed with `--no-deps` into a
venv under ~/.cache/alignflow/bench-trl112 that reuses this interpreter's packages. Each run is a fresh process (ours
with this interpreter, TRL with the venv's), alternating ours, TRL, ours, TRL, ... with seed 0, 1, ... shared by each
pair. Episodes/s = updates x batch / wall time of `train()` (sampling, scoring, optimisation; model loading excluded).
Gain/update = least-squares slope of the mean reward-model score per update. Medians over repeats; `--out` saves the
figures as JSON.

Known differences: TRL's critic is a separate value model (a second backbone, initialised from the reward model);
ours is a value head on the policy. TRL does not clip gradients (ours clips at 1.0), takes old log-probs from the
generation scores (ours recomputes them) and calls gc.collect() twice per update, which dominates its time at this
size (the report shows the share). TRL scores the sampled token ids; ours scores re-tokenized decoded text (our
reward_fn API), so absolute rewards differ by an offset: compare gains, not levels.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "alignflow" / "bench-trl112"
TRL_SPEC = "trl==1.12.*"
PROMPTS = 64
SETTINGS = dict(
    batch_size=8, minibatch_size=4, ppo_epochs=2, new_tokens=16, learning_rate=3e-3, kl_coef=0.05, temperature=1.0
)
ENV = {
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TRL_EXPERIMENTAL_SILENCE": "1",
    "WANDB_DISABLED": "true",
    "PYTHONWARNINGS": "ignore",
}


# -- setup (parent) ---------------------------------------------------------------------------------
def trl_python() -> Path:
    """The venv's python with trl 1.12 importable; creates the venv and installs what is missing on first use."""
    python = VENV / "bin" / "python"
    check = "import trl, trl.experimental.ppo; assert trl.__version__.startswith('1.12.'), trl.__version__"
    if python.exists() and subprocess.run([python, "-c", check], capture_output=True, env=child_env()).returncode == 0:
        return python
    print(f"setting up {TRL_SPEC} in {VENV} (reusing this interpreter's packages) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", VENV], check=True)
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", TRL_SPEC], check=True)
    # Its hard requirements (accelerate, datasets, jinja2, packaging, transformers) come from this interpreter;
    # install only those missing or out of range. The PPO module also imports pandas without declaring it.
    missing = subprocess.run(
        [
            python,
            "-c",
            (
                "from importlib.metadata import requires, version, PackageNotFoundError\n"
                "from packaging.requirements import Requirement\n"
                "for spec in [Requirement(r) for r in requires('trl')] + [Requirement('pandas')]:\n"
                "    if spec.marker and not spec.marker.evaluate({'extra': ''}): continue\n"
                "    try: ok = spec.specifier.contains(version(spec.name), prereleases=True)\n"
                "    except PackageNotFoundError: ok = False\n"
                "    if not ok: print(spec)"
            ),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if missing:
        print(f"installing missing trl requirements: {' '.join(missing)}", flush=True)
        subprocess.run([*pip, *missing], check=True)
    subprocess.run([python, "-c", check], check=True, env=child_env())
    return python


def child_env(threads: int = 1) -> dict[str, str]:
    return {**os.environ, **ENV, **{k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}}


def build_models(work: Path, hidden: int) -> None:
    """Policy, reward model (same config, num_labels=1) and tokenizer saved to `work`; prompts to prompts.json."""
    sys.path.insert(0, str(ROOT))
    import torch
    from transformers import LlamaForSequenceClassification
    from transformers.utils import logging

    from alignflow.models.tiny import build_tiny_causal_lm

    logging.set_verbosity_error()
    logging.disable_progress_bar()

    prompts = [json.loads(line)["prompt"] for line in (ROOT / "data/samples/prompts.jsonl").read_text().splitlines()]
    prompts = sorted(prompts, key=len)[:PROMPTS]  # the shortest, in a stable order
    corpus = prompts + [
        m["content"]
        for line in (ROOT / "data/samples/sft.jsonl").read_text().splitlines()
        for m in json.loads(line)["messages"]
    ]
    lm, tokenizer = build_tiny_causal_lm(corpus, seed=0, hidden_size=hidden)
    lm.save_pretrained(work / "policy")
    tokenizer.save_pretrained(work / "policy")
    torch.manual_seed(1)
    config = copy.deepcopy(lm.config)
    config.num_labels = 1
    reward = LlamaForSequenceClassification(config)
    torch.nn.init.normal_(reward.score.weight, std=hidden**-0.5)  # scores of order 1 rather than 0.02
    reward.save_pretrained(work / "reward")
    tokenizer.save_pretrained(work / "reward")
    rows = []
    for prompt in prompts:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
        rows.append({"prompt": text, "input_ids": tokenizer(text)["input_ids"]})
    (work / "prompts.json").write_text(json.dumps(rows))


# -- the two sides (children) -----------------------------------------------------------------------
def run_ours(work: Path, s: dict) -> dict:
    sys.path.insert(0, str(ROOT))
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    from alignflow.config import PPOParams
    from alignflow.rl.ppo import PolicyGradientTrainer

    tokenizer = AutoTokenizer.from_pretrained(work / "policy")
    lm = AutoModelForCausalLM.from_pretrained(work / "policy")
    reward_model = AutoModelForSequenceClassification.from_pretrained(work / "reward").eval()

    @torch.no_grad()
    def reward_fn(prompts, responses):
        batch = tokenizer(
            [p + r for p, r in zip(prompts, responses)], return_tensors="pt", padding=True, padding_side="right"
        )
        return reward_model(**batch).logits[:, 0]  # pooled at the last non-pad token

    params = PPOParams(
        tuning="full",
        updates=s["updates"],
        batch_size=s["batch_size"],
        minibatch_size=s["minibatch_size"],
        ppo_epochs=s["ppo_epochs"],
        learning_rate=s["learning_rate"],
        max_new_tokens=s["new_tokens"],
        min_new_tokens=s["new_tokens"],
        temperature=s["temperature"],
        kl_coef=s["kl_coef"],
        normalise_reward=False,
        reward_clip=None,
        advantage="gae",  # what TRL's PPOTrainer does: a critic, one response per prompt
        samples_per_prompt=1,
        unfinished_penalty=0.0,
        mixed_precision="no",
    )
    trainer = PolicyGradientTrainer(
        lm,
        tokenizer,
        reward_fn,
        json.loads((work / "prompts.json").read_text()),
        params,
        stop_token=tokenizer.eos_token,
        seed=s["seed"],
    )
    start = time.perf_counter()
    history = trainer.train()
    return {"seconds": time.perf_counter() - start, "rewards": [h["reward_mean"] for h in history]}


def run_trl(work: Path, s: dict) -> dict:
    import gc

    import torch
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    class Scores(TrainerCallback):
        def __init__(self):
            self.values: list[float] = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "objective/scores" in logs:
                self.values.append(logs["objective/scores"])

    tokenizer = AutoTokenizer.from_pretrained(work / "policy", padding_side="left")  # its collator pads queries
    rows = json.loads((work / "prompts.json").read_text())
    config = PPOConfig(
        output_dir=str(work / f"trl-{s['seed']}"),
        seed=s["seed"],
        per_device_train_batch_size=s["batch_size"],
        gradient_accumulation_steps=1,
        num_mini_batches=s["batch_size"] // s["minibatch_size"],
        num_ppo_epochs=s["ppo_epochs"],
        total_episodes=s["updates"] * s["batch_size"],
        response_length=s["new_tokens"],
        stop_token=None,
        missing_eos_penalty=None,
        temperature=s["temperature"],
        kl_coef=s["kl_coef"],
        learning_rate=s["learning_rate"],
        lr_scheduler_type="constant",
        adam_epsilon=1e-5,
        weight_decay=0.01,
        bf16=False,
        gradient_checkpointing=False,
        use_cpu=not torch.cuda.is_available(),
        num_sample_generations=0,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
    )
    scores = Scores()
    trainer = PPOTrainer(
        args=config,
        processing_class=tokenizer,
        model=AutoModelForCausalLM.from_pretrained(work / "policy"),
        ref_model=AutoModelForCausalLM.from_pretrained(work / "policy"),
        reward_model=AutoModelForSequenceClassification.from_pretrained(work / "reward"),
        value_model=AutoModelForSequenceClassification.from_pretrained(work / "reward"),
        train_dataset=Dataset.from_dict({"input_ids": [r["input_ids"] for r in rows]}),
        callbacks=[scores],
    )
    gc_seconds = [0.0]  # TRL calls gc.collect() twice per update; time it (behaviour unchanged)

    def timed_collect(*args, collect=gc.collect):
        start = time.perf_counter()
        try:
            return collect(*args)
        finally:
            gc_seconds[0] += time.perf_counter() - start

    gc.collect = timed_collect
    start = time.perf_counter()
    trainer.train()
    return {
        "seconds": time.perf_counter() - start,
        "rewards": scores.values,
        "version": trl.__version__,
        "gc_seconds": gc_seconds[0],
    }


# -- orchestration and report -----------------------------------------------------------------------
def run_child(python: Path, impl: str, work: Path, settings: dict, threads: int) -> dict:
    command = [python, __file__, "--child", impl, "--work", work, "--settings", json.dumps(settings)]
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(threads))
    for line in reversed(done.stdout.splitlines()):
        try:
            result = json.loads(line)
        except ValueError:
            continue
        if isinstance(result, dict) and result.get("impl") == impl:
            return result
    sys.exit(f"{impl} run failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def slope(values: list[float]) -> float:
    n = len(values)
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    return sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values)) / sum((i - mean_x) ** 2 for i in range(n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=30, help="fewer make the reward slope mostly noise")
    parser.add_argument("--repeats", type=int, default=3, help="ours/TRL pairs, alternated; medians are reported")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (1: steadier on a busy machine)")
    parser.add_argument("--child", choices=["ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--settings", type=json.loads, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help="also save the figures to this JSON file")
    args = parser.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        result = (run_ours if args.child == "ours" else run_trl)(args.work, args.settings)
        print(json.dumps({"impl": args.child, **result}), flush=True)
        return

    python = trl_python()
    pythons = {"ours": Path(sys.executable), "trl": python}
    with tempfile.TemporaryDirectory(prefix="ppo-vs-trl-") as tmp:
        work = Path(tmp)
        build_models(work, args.hidden)
        runs: dict[str, list[dict]] = {"ours": [], "trl": []}
        for repeat in range(args.repeats):
            for impl in ("ours", "trl"):
                settings = {**SETTINGS, "updates": args.updates, "seed": repeat}
                runs[impl].append(run_child(pythons[impl], impl, work, settings, args.threads))
                print(f"  {impl} seed {repeat}: {runs[impl][-1]['seconds']:.1f}s", flush=True)

    episodes = args.updates * SETTINGS["batch_size"]
    names = {"ours": "ours (alignflow)", "trl": f"trl {runs['trl'][0]['version']} PPOTrainer"}
    header = (
        f"{'implementation':<26}{'seed':>5}{'updates':>8}{'episodes':>9}{'seconds':>9}{'episodes/s':>11}"
        f"{'reward first→last':>20}{'gain/update':>12}"
    )
    print(f"\nsettings: {json.dumps(SETTINGS)}, hidden {args.hidden}, {PROMPTS} prompts, {args.threads} thread(s)")
    print(f"{header}\n{'-' * len(header)}")
    summary = {}
    for impl in ("ours", "trl"):
        for seed, run in enumerate(runs[impl]):
            run["eps"], run["gain"] = episodes / run["seconds"], slope(run["rewards"])
            print(
                f"{names[impl]:<26}{seed:>5}{args.updates:>8}{episodes:>9}{run['seconds']:>9.2f}{run['eps']:>11.2f}"
                f"{run['rewards'][0]:>11.3f} → {run['rewards'][-1]:<6.3f}{run['gain']:>12.4f}"
            )
        summary[impl] = {key: statistics.median(r[key] for r in runs[impl]) for key in ("seconds", "eps", "gain")}
        s = summary[impl]
        print(
            f"{names[impl] + ' median':<31}{args.updates:>8}{episodes:>9}{s['seconds']:>9.2f}{s['eps']:>11.2f}"
            f"{'':>20}{s['gain']:>12.4f}"
        )
    gc_share = statistics.median(r["gc_seconds"] / r["seconds"] for r in runs["trl"])
    print(f"(trl spends {gc_share:.0%} of its time in the gc.collect() calls of its update loop)")
    ratio = summary["ours"]["eps"] / summary["trl"]["eps"]
    print(
        f"ours vs trl 1.12 PPOTrainer: {ratio:.2f}x episodes/s (target >= 1.0); "
        f"reward gain/update ours {summary['ours']['gain']:.4f} vs trl {summary['trl']['gain']:.4f}"
    )
    sys.path.insert(0, str(ROOT))
    from alignflow.timing import machine
    from bench.record import save

    result = {
        "machine": machine(),
        "trl_version": runs["trl"][0]["version"],
        "updates": args.updates,
        "repeats": args.repeats,
        "hidden": args.hidden,
        "threads": args.threads,
        "prompts": PROMPTS,
        **SETTINGS,
        "episodes": episodes,
    }
    for impl in ("ours", "trl"):
        result |= {
            f"{impl}_seconds": round(summary[impl]["seconds"], 2),
            f"{impl}_episodes_per_second": round(summary[impl]["eps"], 2),
            f"{impl}_reward_gain_per_update": round(summary[impl]["gain"], 4),
            f"{impl}_seconds_by_seed": [round(run["seconds"], 2) for run in runs[impl]],
            f"{impl}_reward_gain_per_update_by_seed": [round(run["gain"], 4) for run in runs[impl]],
        }
    result |= {"trl_gc_share": round(gc_share, 3), "ours_vs_trl_speedup": round(ratio, 2)}
    save(args.out, result)


if __name__ == "__main__":
    main()
