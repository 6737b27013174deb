"""Render conversations as model text, and tokenize them with completion-only labels.

Two formats: the tokenizer's own chat template, or the seed's plain markers
(`###HUMAN###question###BOT###answer###STOP###`, markers added as special tokens). Either way the
character spans of assistant replies are known, so labels are -100 everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alignflow.config import MarkerParams, Params, TokenizeParams
from alignflow.errors import ConfigError

IGNORE_INDEX = -100

Prompt = str | list[dict[str, str]]
"""A single user message, or a conversation of turns ending with the user's (multi-turn prompts)."""


def prompt_turns(prompt: Prompt, context: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """The turns up to where the reply begins: `context` (earlier turns, if any), then the user's prompt."""
    if isinstance(prompt, list):
        return prompt
    return [*(context or []), {"role": "user", "content": prompt}]


def conversation(row: dict) -> Prompt:
    """What a prompt row is scored against: its text alone, or its turns when it has earlier ones."""
    return prompt_turns(row["prompt"], row["context"]) if row.get("context") else row["prompt"]


@dataclass(frozen=True)
class ChatFormat:
    """How text is laid out for the policy; shared by SFT, PPO sampling and evaluation."""

    template: str
    markers: MarkerParams

    def render(self, tokenizer, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
        """(text, assistant spans). Spans include the end-of-turn marker so the model learns to stop."""
        return _render_chat(tokenizer, messages) if self.template == "chat" else self._render_markers(messages)

    def prompt(self, tokenizer, prompt: Prompt) -> str:
        """Text that ends where the assistant's reply should begin, earlier turns rendered as turns."""
        turns = prompt_turns(prompt)
        if self.template == "chat":
            return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        return self._render_markers(turns)[0] + self.markers.bot

    def stop_token(self, tokenizer) -> str:
        return tokenizer.eos_token if self.template == "chat" else self.markers.stop

    def _render_markers(self, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
        text, spans = "", []
        for message in messages:
            if message["role"] == "system":
                text += message["content"] + "\n"
            elif message["role"] == "user":
                text += self.markers.human + message["content"]
            else:
                text += self.markers.bot
                start = len(text)
                text += message["content"] + self.markers.stop
                spans.append((start, len(text)))
        return text, spans


def prepare_tokenizer(tokenizer, params: TokenizeParams) -> ChatFormat:
    """Check (and if configured, set) what the chosen format needs from the tokenizer."""
    if params.template == "markers":
        markers = params.markers
        tokenizer.add_special_tokens({"additional_special_tokens": [markers.human, markers.bot, markers.stop]})
    else:
        if params.chat_template:
            tokenizer.chat_template = params.chat_template
        if not tokenizer.chat_template:
            raise ConfigError(
                "tokenize.template: the base tokenizer has no chat template; set tokenize.chat_template "
                "to a Jinja template, or use tokenize.template: markers"
            )
    return ChatFormat(params.template, params.markers)


def _render_chat(tokenizer, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(messages[:index], tokenize=False, add_generation_prompt=True)
        through = tokenizer.apply_chat_template(messages[: index + 1], tokenize=False).rstrip()
        if not (full.startswith(before) and full.startswith(through) and len(through) > len(before)):
            raise ConfigError(
                "tokenize.template: the chat template renders a conversation's prefix differently from "
                "the whole conversation, so assistant turns cannot be located; use tokenize.template: "
                "markers or set tokenize.chat_template"
            )
        spans.append((len(before), len(through)))
    return full, spans


def tokenize_with_labels(
    tokenizer, text: str, spans: list[tuple[int, int]], max_length: int, add_special_tokens: bool = False
) -> dict[str, Any]:
    """input_ids and labels (token ids inside assistant spans, -100 elsewhere), truncated to max_length."""
    encoded = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    labels = [
        token if finish > begin and any(start <= begin < end for start, end in spans) else IGNORE_INDEX
        for token, (begin, finish) in zip(ids, offsets)
    ]
    return {"input_ids": ids[:max_length], "labels": labels[:max_length], "truncated": len(ids) > max_length}


def reward_inputs(tokenizer, prompt: Prompt, response: str, max_length: int) -> dict[str, Any]:
    """Encode (prompt, response) for a reward model exactly as training and scoring both will.

    Encoders (BERT-like, with [CLS]/[SEP]) get a sentence pair, a multi-turn prompt as `User: …` /
    `Assistant: …` lines; a pair too long keeps the end of the context (the question, not the oldest turns) and the
    start of the response, which gets at least half the room. Decoders get the chat-rendered exchange, truncated
    from the left so the end of the response, which the head reads, survives. Returns input_ids, attention_mask
    and whether anything was cut.
    """
    turns = prompt_turns(prompt)
    if tokenizer.cls_token is not None and tokenizer.sep_token is not None:
        context = (
            turns[0]["content"]
            if len(turns) == 1
            else "\n".join(f"{turn['role'].capitalize()}: {turn['content']}" for turn in turns)
        )
        ids = tokenizer(context, response)["input_ids"]
        truncated = len(ids) > max_length
        if truncated:
            ids = _pair_within(tokenizer, context, response, max_length)
    else:
        messages = [*turns, {"role": "assistant", "content": response}]
        if tokenizer.chat_template:
            ids = tokenizer(tokenizer.apply_chat_template(messages, tokenize=False), add_special_tokens=False)[
                "input_ids"
            ]
        else:
            ids = tokenizer("\n".join(turn["content"] for turn in messages))["input_ids"]
        truncated = len(ids) > max_length
        ids = ids[-max_length:]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "truncated": truncated}


def _pair_within(tokenizer, context: str, response: str, max_length: int) -> list[int]:
    """Cut each side of the pair on its own, then add the special tokens as the tokenizer's template places them."""
    backend = tokenizer.backend_tokenizer
    first = backend.encode(context, add_special_tokens=False)
    second = backend.encode(response, add_special_tokens=False)
    room = max_length - tokenizer.num_special_tokens_to_add(pair=True)
    keep_reply = min(len(second.ids), max(room // 2, room - len(first.ids)))
    first.truncate(min(len(first.ids), room - keep_reply), direction="left")
    second.truncate(keep_reply)
    return backend.post_processor.process(first, second, add_special_tokens=True).ids


def policy_stop_token(params: Params, tokenizer) -> str:
    """The token that ends a policy response: `align.stop_token`, else the chat format's end-of-turn token."""
    return params.align.stop_token or ChatFormat(params.tokenize.template, params.tokenize.markers).stop_token(
        tokenizer
    )
