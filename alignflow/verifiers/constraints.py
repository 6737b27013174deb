"""Training prompts for instruction following: the project's own prompts with IFEval-style constraints attached.

IFEval's authors built each test prompt from a task and one to three instructions of their 25 types, never two
that conflict, with arguments drawn at random, and the instruction's own wording appended. Here the same
checkers (lm-eval's copy of Google's code) draw the arguments and write the wording, seeded per prompt, so a
prompt file yields the same constraints on every machine. IFEval's test prompts are never used: the tasks are the
caller's, and `alignflow.verifiers.decontamination` refuses any that overlap IFEval's.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from alignflow.evaluation.ifeval import checkers
from alignflow.verifiers.checks import prompt_text

NEEDS_THE_PROMPT = {"combination:repeat_prompt"}
"""Instructions whose wording quotes the task (the answer must repeat it first)."""


def draw_constraints(task: str, rng: random.Random, most: int = 3, exclude: Iterable[str] = ()) -> list[dict[str, Any]]:
    """One to `most` non-conflicting instructions for `task`: [{"instruction_id", "kwargs", "description"}]."""
    registry = checkers()
    available = sorted(set(registry.INSTRUCTION_DICT) - set(exclude))
    chosen: list[str] = []
    for _ in range(rng.randint(1, most)):
        allowed = [i for i in available if i not in chosen and not _conflicts(i, chosen, registry)]
        if not allowed:
            break
        chosen.append(rng.choice(allowed))
    constraints = []
    state = random.getstate()  # the checkers draw their arguments from the module-level generator
    try:
        random.seed(rng.getrandbits(64))
        for instruction in chosen:
            checker = registry.INSTRUCTION_DICT[instruction](instruction)
            extra = {"prompt_to_repeat": task} if instruction in NEEDS_THE_PROMPT else {}
            description = checker.build_description(**extra)
            kwargs = checker.get_instruction_args() or {}
            constraints.append({"instruction_id": instruction, "kwargs": kwargs, "description": description})
    finally:
        random.setstate(state)
    return constraints


def _conflicts(instruction: str, chosen: Sequence[str], registry: Any) -> bool:
    conflicts = registry.INSTRUCTION_CONFLICTS
    return any(other in conflicts.get(instruction, ()) or instruction in conflicts.get(other, ()) for other in chosen)


def with_constraints(
    records: Iterable[Mapping[str, Any]], seed: int, most: int = 3, exclude: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Each prompt record with constraints attached: its prompt text followed by their wording, and `constraints`
    ([{"instruction_id", "kwargs"}], what the `ifeval` verifier checks). Seeded by `seed` and the record's id."""
    exclude = tuple(exclude)
    out = []
    for record in records:
        task = prompt_text(record).strip()
        rng = random.Random(f"{seed}:{record['id']}")
        drawn = draw_constraints(task, rng, most, exclude)
        prompt = " ".join([task, *(c["description"] for c in drawn)])
        constraints = [{"instruction_id": c["instruction_id"], "kwargs": c["kwargs"]} for c in drawn]
        out.append({**record, "prompt": prompt, "constraints": constraints})
    return out
