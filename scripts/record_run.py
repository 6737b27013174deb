"""Save a pipeline run's measured files as one results record, `results/runs/<date>-<profile>-<method>-<commit>.json`.

The docs' ledger and results tables are written from these records (`scripts/write_docs.py`), so a run's figures
stay citable after the next run overwrites `metrics/`. Run `python scripts/record_run.py` after a run (the record
names HEAD, whose code made it, and the profile and method params.yaml ran with), or `--commit SHA` to record the
metrics committed at SHA.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "results/runs"
sys.path.insert(0, str(ROOT / "scripts"))

from docgen.results import RECORDED  # noqa: E402


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def committed(commit: str, path: str) -> str | None:
    try:
        return git("show", f"{commit}:{path}")
    except subprocess.CalledProcessError:
        return None


def record(commit: str | None) -> dict:
    """The record of the working tree's metrics (commit None) or of those committed at `commit`."""
    if commit is None:
        read = lambda path: (ROOT / path).read_text() if (ROOT / path).is_file() else None  # noqa: E731
        sha, date = (
            git("rev-parse", "--short", "HEAD").strip(),
            datetime.datetime.now(datetime.UTC).isoformat("T", "seconds"),
        )
    else:
        read = lambda path: committed(commit, path)  # noqa: E731
        sha, date = git("log", "-1", "--format=%h %cI", commit).split()
    params = yaml.safe_load(read("params.yaml") or "{}")
    # Before the policy slot (the `align` section) PPO was the only method.
    method = params.get("align", {}).get("method", "ppo")
    entry = {"date": date, "commit": sha, "profile": params.get("profile", "default"), "method": method}
    for name in RECORDED:
        text = read(f"metrics/{name}.json")
        if text is not None:
            entry[name] = json.loads(text)
    if "eval" not in entry:
        sys.exit(f"error: no metrics/eval.json {'in the working tree' if commit is None else 'at ' + commit}")
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commit", help="record the metrics committed at this commit instead of the working tree")
    args = parser.parse_args()
    entry = record(args.commit)
    path = RUNS / f"{entry['date'][:10]}-{entry['profile']}-{entry['method']}-{entry['commit']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entry, indent=1, sort_keys=True) + "\n")
    print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
