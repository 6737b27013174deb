"""Model folders: files that fail to load give one line naming the folder; shipped code runs only when allowed."""

from __future__ import annotations

import json

import pytest

from alignflow.models import loading
from alignflow.models.loading import ModelLoadError, allow_remote_code, load_pretrained

CUSTOM_CONFIG = """
from transformers import PretrainedConfig


class ShippedConfig(PretrainedConfig):
    model_type = "shipped-custom"
"""


@pytest.fixture
def trust_reset():
    yield
    allow_remote_code(False)


def test_a_corrupt_weights_file_is_one_line_naming_the_folder(tiny_lm, tmp_path):
    from transformers import AutoModelForCausalLM

    lm, _ = tiny_lm
    lm.save_pretrained(tmp_path, safe_serialization=True)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelLoadError) as caught:
        load_pretrained(AutoModelForCausalLM, tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path}: cannot load the model (") and "\n" not in message


def test_a_missing_tokenizer_is_one_line_naming_the_folder(tmp_path):
    from transformers import AutoTokenizer

    with pytest.raises(ModelLoadError, match=f"^{tmp_path}: cannot load the tokenizer"):
        load_pretrained(AutoTokenizer, tmp_path)


def test_code_shipped_with_a_model_runs_only_when_a_param_allows_it(tmp_path, trust_reset, caplog):
    from transformers import AutoConfig

    (tmp_path / "configuration_shipped.py").write_text(CUSTOM_CONFIG)
    config = {"model_type": "shipped-custom", "auto_map": {"AutoConfig": "configuration_shipped.ShippedConfig"}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert not loading.remote_code_trusted()
    with pytest.raises(ModelLoadError, match=f"^{tmp_path}: ships its own Python code, .*trust_remote_code: true$"):
        load_pretrained(AutoConfig, tmp_path)
    with caplog.at_level("WARNING"):
        allow_remote_code(True)
    assert "trust_remote_code is on" in caplog.text
    assert type(load_pretrained(AutoConfig, tmp_path)).__name__ == "ShippedConfig"
