"""GGUF export of a registered version, checked by loading the file back with transformers' GGUF loader (the path
ingest reads GGUF with) against the registered safetensors model; and the terminal chat, with piped input."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from alignflow.gguf_export import ExportError, export_gguf, export_registered
from tests.integration.test_registry import client, project, register  # noqa: F401  (the registry fixture)

PROMPTS = ["How do I keep basil fresh?", "Why is the sky blue?", "My bike chain squeaks."]


def round_trip(path: Path):
    """The registered policy and the exported file, both loaded by transformers: (max |logit difference|, share of
    greedy tokens that agree over PROMPTS)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    policy = Path("models/policy")
    original = AutoModelForCausalLM.from_pretrained(policy, torch_dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(policy)
    loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, torch_dtype=torch.float32).eval()
    assert (
        AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)(PROMPTS[0])["input_ids"]
        == tokenizer(PROMPTS[0])["input_ids"]
    )
    worst, agree, total = 0.0, 0, 0
    with torch.no_grad():
        for prompt in PROMPTS:
            ids = tokenizer(prompt, return_tensors="pt").input_ids
            worst = max(worst, float((original(ids).logits - loaded(ids).logits).abs().max()))
            mine = original.generate(ids, max_new_tokens=12, do_sample=False)[0, ids.shape[1] :]
            theirs = loaded.generate(ids, max_new_tokens=12, do_sample=False)[0, ids.shape[1] :]
            agree += int((mine[: len(theirs)] == theirs[: len(mine)]).sum())
            total += max(len(mine), len(theirs))
    return worst, agree / total


def test_f16_export_round_trips_and_is_logged_on_the_version(project, tmp_path):  # noqa: F811
    register()
    out = tmp_path / "policy.f16.gguf"
    version, exported = export_registered(client(), "alignflow-policy", None, "staging", "f16", out, force=False)
    worst, agreement = round_trip(out)
    assert version == "1" and worst < 1e-2 and agreement == 1.0, (worst, agreement)
    registered = client().get_model_version("alignflow-policy", "1")
    assert registered.tags["lineage.gguf.f16.sha256"] == exported.sha256
    logged = {Path(f.path).name for f in client().list_artifacts(registered.run_id, "gguf")}
    assert logged == {"policy.f16.gguf", "policy.f16.Modelfile"}
    modelfile = exported.modelfile.read_text()
    assert modelfile.startswith("FROM ./policy.f16.gguf") and 'PARAMETER stop "<|im_end|>"' in modelfile


def test_q8_0_export_agrees_within_a_measured_bound(project, tmp_path):  # noqa: F811
    register()
    _, exported = export_registered(client(), "alignflow-policy", "1", None, "q8_0", tmp_path / "q.gguf", False)
    worst, agreement = round_trip(exported.path)
    assert worst < 0.05 and agreement >= 0.9, (worst, agreement)


def test_bad_requests_are_one_line_and_write_nothing(project, tmp_path):  # noqa: F811
    from transformers import GPT2Config, GPT2LMHeadModel

    register()
    with pytest.raises(ExportError, match=r"^alignflow-policy version 7: not in the registry"):
        export_registered(client(), "alignflow-policy", "7", None, "f16", tmp_path / "x.gguf", False)
    with pytest.raises(ExportError, match=r"^alignflow-policy alias @production: not in the registry"):
        export_registered(client(), "alignflow-policy", None, "production", "f16", tmp_path / "x.gguf", False)
    existing = tmp_path / "taken.gguf"
    existing.write_text("keep me")
    with pytest.raises(ExportError, match=r"taken.gguf: exists; pass --force to replace it$"):
        export_registered(client(), "alignflow-policy", "1", None, "f16", existing, False)
    assert existing.read_text() == "keep me"
    gpt2 = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=64)).save_pretrained(gpt2)
    with pytest.raises(ExportError, match="architecture GPT2LMHeadModel cannot be exported to GGUF here"):
        export_gguf(gpt2, tmp_path / "gpt2.gguf")
    assert not list(tmp_path.glob("*gpt2*.gguf*")) and not list(tmp_path.glob("x.gguf*"))


def test_an_export_that_fails_while_writing_leaves_no_file_behind(project, tmp_path, monkeypatch):  # noqa: F811
    import gguf

    def disk_full(*args, **kwargs):  # after the header and metadata are on disk
        raise OSError(28, "No space left on device")

    register()
    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", disk_full)
    with pytest.raises(OSError, match="No space left"):
        export_registered(client(), "alignflow-policy", "1", None, "f16", tmp_path / "exports/full.gguf", False)
    assert not list((tmp_path / "exports").iterdir())  # neither the file, its partial nor its Modelfile


def test_chat_keeps_history_resets_and_exits_with_piped_input(project):  # noqa: F811
    from alignflow.chat import chat

    register()
    shown = io.StringIO()
    history = chat(
        "models/policy",
        6,
        0.0,
        stdin=io.StringIO("Hi there\nAnd basil?\n/reset\nTea?\n/exit\nnever read\n"),
        stdout=shown,
    )
    assert [turn["role"] for turn in history] == ["user", "assistant"] and history[0]["content"] == "Tea?"
    assert shown.getvalue().count("assistant: ") == 3 and "(conversation reset)" in shown.getvalue()


def chat_command(*arguments: str, stdin: str) -> subprocess.CompletedProcess:
    """`alignflow chat` in a subprocess (it inherits the test's MLFLOW_TRACKING_URI), fed `stdin`."""
    command = [sys.executable, "-m", "alignflow.cli", "chat", *arguments]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=300)


def test_the_chat_command_talks_to_the_staging_version_through_a_pipe(project):  # noqa: F811
    register()
    done = chat_command("--max-new-tokens", "4", stdin="Hello\n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "chatting with models:/alignflow-policy@staging" in done.stdout and "assistant: " in done.stdout
    unknown = chat_command("--model", "models:/alignflow-policy@nowhere", stdin="")
    errors = [line for line in unknown.stderr.splitlines() if line.startswith("error:")]
    assert unknown.returncode == 1 and len(errors) == 1 and "Traceback" not in unknown.stderr, unknown.stderr[-2000:]
    assert errors[0].startswith("error: --model models:/alignflow-policy@nowhere: not found in the registry")
