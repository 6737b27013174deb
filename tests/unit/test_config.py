"""params.yaml loading: typed sections, unknown keys with suggestions, profiles and --set overlays."""

import shutil
from pathlib import Path

import pytest

from alignflow.config import apply_overlay, load_params, load_profile, parse_assignments, parse_params
from alignflow.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_params_and_profiles_load(tmp_path):
    params = load_params(ROOT / "params.yaml")
    assert params.dedup.threshold == 0.9
    assert params.ingest.sft.path == "data/samples/sft.jsonl"
    for profile in (ROOT / "configs").glob("*.yaml"):
        target = tmp_path / f"{profile.stem}.yaml"
        shutil.copy(ROOT / "params.yaml", target)
        assert apply_overlay(target, load_profile(profile.stem, ROOT / "configs"), profile.stem).profile == profile.stem


def test_unknown_key_names_nearest_valid_key():
    with pytest.raises(ConfigError, match=r"dedup\.treshold: unknown key; did you mean 'threshold'"):
        parse_params({"dedup": {"treshold": 0.5}})
    with pytest.raises(ConfigError, match=r"ingest\.sft\.pth: unknown key; did you mean 'path'"):
        parse_params({"ingest": {"sft": {"pth": "x.jsonl"}}})


def test_mistyped_values_are_rejected():
    with pytest.raises(ConfigError, match=r"dedup\.batch_size: expected int, found 'many'"):
        parse_params({"dedup": {"batch_size": "many"}})
    with pytest.raises(ConfigError, match=r"tokenize\.template: expected one of 'chat', 'markers'"):
        parse_params({"tokenize": {"template": "llama"}})


def test_plain_no_is_the_choice_not_false(tmp_path):
    """PyYAML reads a plain `no` as false, DVC as the string: both must mean full precision."""
    target = tmp_path / "params.yaml"
    target.write_text("sft:\n  mixed_precision: no\n")
    assert load_params(target).sft.mixed_precision == "no"
    shutil.copy(ROOT / "params.yaml", target)
    apply_overlay(target, {"ppo": {"mixed_precision": "no"}})  # the round-trip writer drops the quotes
    assert load_params(target).ppo.mixed_precision == "no"


@pytest.mark.parametrize("threshold", [0, -0.1, 1.01])
def test_dedup_threshold_outside_unit_interval(threshold):
    with pytest.raises(ConfigError, match=r"dedup\.threshold: must be in \(0, 1\]"):
        parse_params({"dedup": {"threshold": threshold}})


def test_partial_nested_section_keeps_other_defaults():
    params = parse_params({"ingest": {"sft": {"limit": 5}}})
    assert params.ingest.sft.path == "data/samples/sft.jsonl" and params.ingest.sft.limit == 5


def test_profile_and_set_are_written_into_params(tmp_path):
    target = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", target)
    apply_overlay(target, load_profile("tiny", ROOT / "configs"), profile="tiny")
    apply_overlay(target, parse_assignments(["dedup.threshold=0.85", "ingest.sft.limit=7"]))
    params = load_params(target)
    assert (params.profile, params.ingest.model, params.dedup.threshold, params.ingest.sft.limit) == (
        "tiny",
        "tiny",
        0.85,
        7,
    )
    assert "# alignflow parameters" in target.read_text()  # comments survive
    with pytest.raises(ConfigError, match="unknown key"):
        parse_assignments(["dedup.thresold=0.8"])
    with pytest.raises(ConfigError):
        apply_overlay(target, parse_assignments(["dedup.threshold=2"]))
    assert load_params(target).dedup.threshold == 0.85  # a rejected overlay changes nothing


def test_the_dataclass_defaults_are_the_values_params_yaml_ships():
    import dataclasses

    from alignflow.config import Params, load_params

    def differences(shipped, default, path=""):
        if not dataclasses.is_dataclass(shipped):
            return [] if shipped == default else [f"{path}: params.yaml {shipped!r}, default {default!r}"]
        return [
            found
            for f in dataclasses.fields(shipped)
            for found in differences(getattr(shipped, f.name), getattr(default, f.name), f"{path}.{f.name}".strip("."))
        ]

    assert differences(load_params(ROOT / "params.yaml"), Params()) == []


def test_a_list_of_sections_flattens_by_index_into_names_mlflow_accepts(tmp_path):
    import mlflow

    from alignflow.config import parse_params, section_dict
    from alignflow.training.common import params_snapshot

    params = parse_params({"ppo": {"verifiers": [{"name": "length", "options": {"min_words": 3}}, {"name": "exact"}]}})
    flat = section_dict(params.ppo)
    assert flat["verifiers.0.name"] == "length" and flat["verifiers.1.name"] == "exact"
    assert flat["verifiers.0.options"] == {"min_words": 3}
    assert params_snapshot(params.ppo)["ppo.verifiers.1.weight"] == 1.0  # JSON-safe: checkpoints compare it
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.create_run(client.create_experiment("params"))
    for name, value in flat.items():  # as the stages log their section
        client.log_param(run.info.run_id, name, value)
    assert client.get_run(run.info.run_id).data.params["verifiers.1.name"] == "exact"
