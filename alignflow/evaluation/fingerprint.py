"""What an evaluation's numbers depend on, hashed part by part, so that the gate compares only like with like.

Two versions evaluated on other prompts, with other decoding, another checker release, another chat template or
other scorers carry numbers that mean different things; the gate reads the parts that differ from here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

TAG_PREFIX = "fingerprint."


def digest(value: Any) -> str:
    """A short sha256 of any JSON-serialisable value (keys sorted)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def folder_digest(folder: Path) -> str:
    """A short sha256 of every weight file in `folder` (names and bytes), so a retrained scorer differs."""
    sha = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*.safetensors")):
        sha.update(str(path.relative_to(folder)).encode())
        with open(path, "rb") as data:
            for block in iter(lambda: data.read(1 << 20), b""):
                sha.update(block)
    return sha.hexdigest()[:16]


def evaluation_fingerprint(
    eval_prompts: Iterable[Mapping[str, Any]],
    ifeval_keys: Iterable[int],
    ifeval_file: Path,
    decoding: Mapping[str, Any],
    checker: str,
    chat_template: str,
    scorers: Mapping[str, Path],
) -> dict[str, str]:
    """One hash per part (eval_prompts, ifeval, decoding, checker, chat_template, scorers) and their `digest`."""
    parts = {
        "eval_prompts": digest([[p.get("id"), p["input_ids"]] for p in eval_prompts]),
        "ifeval": digest([hashlib.sha256(ifeval_file.read_bytes()).hexdigest(), list(ifeval_keys)]),
        "decoding": digest(dict(decoding)),
        "checker": checker,
        "chat_template": digest(chat_template),
        "scorers": digest({name: folder_digest(folder) for name, folder in sorted(scorers.items())}),
    }
    return {**parts, "digest": digest(parts)}


def as_tags(fingerprint: Mapping[str, str]) -> dict[str, str]:
    return {f"{TAG_PREFIX}{part}": value for part, value in fingerprint.items()}


def from_tags(tags: Mapping[str, str]) -> dict[str, str]:
    return {key.removeprefix(TAG_PREFIX): value for key, value in tags.items() if key.startswith(TAG_PREFIX)}


def differing_parts(mine: Mapping[str, str], theirs: Mapping[str, str]) -> list[str]:
    """The parts whose hashes differ (a part missing on one side differs), `digest` left out."""
    return sorted(part for part in set(mine) | set(theirs) if part != "digest" and mine.get(part) != theirs.get(part))
