"""`alignflow chat`: talk to a registered version or a model folder in the terminal, through its chat template.

Multi-turn history, replies streamed token by token, each ended at the stop token (the chat template's end of
turn), `/reset` to forget the conversation and `/exit` (or end of input) to leave. Reads stdin line by line, so a
piped conversation works as well as a typed one.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path
from typing import TextIO

from alignflow.errors import AlignflowError
from alignflow.models.loading import download_registered_policy

COMMANDS = "/reset forgets the conversation, /exit leaves"


def model_folder(model: str, scratch: Path) -> Path:
    """A local folder for `model`: a folder as given, or a registry URI's policy downloaded into `scratch`."""
    if Path(model).is_dir():
        return Path(model)
    if not model.startswith("models:/"):
        raise AlignflowError(f"--model {model}: neither a model folder nor a registry URI (models:/<name>@<alias>)")
    return download_registered_policy(model, scratch)


def chat(
    model: str, max_new_tokens: int, temperature: float, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout
) -> list[dict[str, str]]:
    """Run the conversation until /exit or the end of input; returns its history."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer

    with tempfile.TemporaryDirectory(prefix="alignflow-chat-") as scratch:
        folder = model_folder(model, Path(scratch))
        tokenizer = AutoTokenizer.from_pretrained(folder)
        lm = AutoModelForCausalLM.from_pretrained(folder).eval()
    stop_ids = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")]
    stop_ids = [token for token in stop_ids if token is not None and token != tokenizer.unk_token_id]
    history: list[dict[str, str]] = []
    print(f"chatting with {model} ({COMMANDS})", file=stdout, flush=True)
    for line in stdin:
        text = line.strip()
        if text == "/exit":
            break
        if text == "/reset":
            history.clear()
            print("(conversation reset)", file=stdout, flush=True)
            continue
        if not text:
            continue
        history.append({"role": "user", "content": text})
        prompt = tokenizer.apply_chat_template(
            history, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        settings = {"do_sample": temperature > 0, **({"temperature": temperature} if temperature > 0 else {})}
        settings |= {"max_new_tokens": max_new_tokens, "eos_token_id": stop_ids, "pad_token_id": tokenizer.pad_token_id}
        worker = threading.Thread(target=lm.generate, kwargs={**prompt, "streamer": streamer, **settings})
        worker.start()  # generate() runs without gradients on its own
        print("assistant: ", end="", file=stdout, flush=True)
        reply = "".join(_echo(piece, stdout) for piece in streamer)
        worker.join()
        print(file=stdout, flush=True)
        history.append({"role": "assistant", "content": reply.strip()})
    return history


def _echo(piece: str, stdout: TextIO) -> str:
    print(piece, end="", file=stdout, flush=True)
    return piece
