"""Build the shipped sample data in data/samples/ from the hand-written bank in scripts/sample_bank/.

Run: `python scripts/make_samples.py` (deterministic). The bank holds questions with a good answer, a
plausible wrong answer, optional follow-up turn and optional light paraphrase, plus prompt-only
questions. From it:
- sft.jsonl          every question as a conversation (multi-turn where a follow-up exists, some with a
                     system turn), plus planted near-duplicates (paraphrased questions) and a few exact
                     duplicates differing only in case/punctuation, so dedup has real work
- comparisons.jsonl  every question with 2-4 responses scored 1-10 and labelled with their quality category:
                     the good answer scores high; partial answers in between; terse, rude, wrong and
                     off-topic answers score low
- prompts.jsonl / eval_prompts.jsonl  the prompt-only questions, split disjointly (eval balanced by topic)
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BANK = ROOT / "scripts" / "sample_bank"
OUT = ROOT / "data" / "samples"
EVAL_SHARE = 0.42
ANSWER_WORDS = 45
"""Answers keep whole sentences up to this many words (~60 policy tokens): a 135M policy on a 2-core CPU
learns to finish such replies, and sampling them stays affordable. The bank keeps the full answers."""
SYSTEM_PROMPTS = [
    "You are a friendly assistant who gives practical, accurate answers.",
    "Answer clearly and politely. Prefer concrete steps over general advice.",
    "You help people with everyday questions. Be concise but complete.",
]
RUDE_OPENERS = [
    "Honestly, this is obvious.",
    "Ugh, fine.",
    "Not sure why you'd even ask that.",
    "Look it up yourself next time.",
    "Whatever.",
    "That's a pretty lazy question.",
    "I guess I'll answer, since you can't figure it out.",
]
TERSE_REPLIES = [
    "Depends.",
    "Just try it and see.",
    "Google it.",
    "No idea, sorry.",
    "It's fine, don't worry about it.",
    "Yes.",
    "No.",
    "Ask someone else.",
]


def load_bank() -> tuple[list[dict], list[dict]]:
    qa, prompts = [], []
    for path in sorted(BANK.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                (qa if item["kind"] == "qa" else prompts).append(item)
    return qa, prompts


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.findall(r".+?[.!?](?=\s|$)", text)] or [text]


def first_sentence(text: str) -> str:
    return sentences(text)[0]


def concise(text: str, words: int = ANSWER_WORDS) -> str:
    """Whole leading sentences within `words` words (always at least the first sentence)."""
    kept: list[str] = []
    for sentence in sentences(text):
        if kept and len(" ".join(kept + [sentence]).split()) > words:
            break
        kept.append(sentence)
    return " ".join(kept)


def conversation(item: dict, rng: random.Random, question: str | None = None) -> list[dict]:
    messages = [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}] if rng.random() < 0.1 else []
    messages += [
        {"role": "user", "content": question or item["question"]},
        {"role": "assistant", "content": concise(item["answer"])},
    ]
    if item.get("follow_up"):
        messages += [
            {"role": "user", "content": item["follow_up"]},
            {"role": "assistant", "content": concise(item["follow_up_answer"])},
        ]
    return messages


def exact_variant(question: str) -> str:
    """Same text up to case and punctuation: caught by the exact (normalised hash) pass."""
    return question.rstrip("?.!").lower() + ("??" if question.endswith("?") else ".")


def build_sft(qa: list[dict], rng: random.Random) -> list[dict]:
    records = [{"messages": conversation(item, rng)} for item in qa]
    planted = [{"messages": conversation(item, rng, item["paraphrase"])} for item in qa if item.get("paraphrase")]
    planted += [{"messages": conversation(item, rng, exact_variant(item["question"]))} for item in rng.sample(qa, 8)]
    for record in planted:  # duplicates land after their original, so keep-first keeps the original
        records.insert(rng.randint(len(records) // 2, len(records)), record)
    return [{"id": f"sft-{i:04d}", **record} for i, record in enumerate(records, start=1)]


def build_comparisons(qa: list[dict], rng: random.Random) -> list[dict]:
    records = []
    for index, item in enumerate(qa):
        other = rng.choice([o for o in qa if o["topic"] != item["topic"]])
        bad = {
            "wrong": (concise(item["wrong"]), rng.choice([1, 2, 3])),
            "terse": (rng.choice([first_sentence(item["answer"]), rng.choice(TERSE_REPLIES)]), rng.choice([3, 4, 5])),
            "rude": (f"{rng.choice(RUDE_OPENERS)} {first_sentence(item['answer'])}", rng.choice([2, 3])),
            "off_topic": (concise(other["answer"]), 1),
        }
        responses = [{"text": concise(item["answer"]), "score": rng.choice([8, 9, 10]), "category": "good"}]
        if item.get("follow_up_answer") and rng.random() < 0.3:  # a decent but less complete answer
            responses.append(
                {
                    "text": first_sentence(item["answer"]) + " " + first_sentence(item["follow_up_answer"]),
                    "score": rng.choice([5, 6, 7]),
                    "category": "partial",
                }
            )
        room = 4 - len(responses)
        taken = {r["text"] for r in responses}  # a one-sentence answer is its own terse form
        candidates = [(category, kept) for category, kept in bad.items() if kept[0] not in taken]
        responses += [
            {"text": text, "score": score, "category": category}
            for category, (text, score) in rng.sample(candidates, rng.randint(1, room))
        ]
        rng.shuffle(responses)
        records.append({"id": f"cmp-{index + 1:04d}", "prompt": item["question"], "responses": responses})
    return records


def split_prompts(prompts: list[dict], rng: random.Random) -> tuple[list[dict], list[dict]]:
    by_topic: dict[str, list[dict]] = {}
    for item in prompts:
        by_topic.setdefault(item["topic"], []).append(item)
    train, held_out = [], []
    for topic in sorted(by_topic):
        items = by_topic[topic]
        rng.shuffle(items)
        cut = max(1, round(len(items) * EVAL_SHARE))
        held_out += items[:cut]
        train += items[cut:]
    rng.shuffle(train)
    rng.shuffle(held_out)
    return (
        [{"id": f"ppo-{i:04d}", "prompt": p["question"]} for i, p in enumerate(train, start=1)],
        [{"id": f"eval-{i:04d}", "prompt": p["question"]} for i, p in enumerate(held_out, start=1)],
    )


def write(name: str, records: list[dict]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / name).open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{name}: {len(records)} records")


def main() -> None:
    qa, prompts = load_bank()
    rng = random.Random(0)
    write("sft.jsonl", build_sft(qa, rng))
    write("comparisons.jsonl", build_comparisons(qa, rng))
    train, held_out = split_prompts(prompts, rng)
    write("prompts.jsonl", train)
    write("eval_prompts.jsonl", held_out)


if __name__ == "__main__":
    main()
