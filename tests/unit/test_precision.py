"""`auto` precision: bf16 only where the machine computes it natively, and a warning for bf16 where it does not."""

import logging

import pytest
import torch

from alignflow import precision


@pytest.fixture(params=[True, False], ids=["native-bf16", "no-bf16"])
def bf16_fast(request, monkeypatch):
    monkeypatch.setattr(precision, "bf16_is_fast", lambda: request.param)
    return request.param


def test_auto_is_bf16_only_where_it_is_fast(bf16_fast):
    assert precision.mixed_precision("sft.mixed_precision", "auto") == ("bf16" if bf16_fast else "no")
    assert precision.weights_dtype("evaluate.dtype", "auto") == ("bfloat16" if bf16_fast else "float32")


def test_explicit_choices_are_kept_and_slow_bf16_is_named(bf16_fast, caplog):
    with caplog.at_level(logging.WARNING, logger=precision.__name__):
        assert precision.mixed_precision("ppo.mixed_precision", "bf16") == "bf16"
        assert precision.weights_dtype("ppo.sampling_dtype", "bfloat16") == "bfloat16"
        assert precision.mixed_precision("sft.mixed_precision", "no") == "no"
    warned = [record.getMessage().split(":")[0] for record in caplog.records]
    assert warned == ([] if bf16_fast else ["ppo.mixed_precision", "ppo.sampling_dtype"])


def test_the_machine_kind_names_its_kernels_and_a_version_made_on_another_kind_is_noted():
    from alignflow.reproduce import machine_difference

    here = precision.arithmetic()
    assert here["device"] in ("cpu", "cuda") and here["capability"] and isinstance(here["native_bf16"], bool)
    if here["device"] == "cpu":  # the kernel family alone cannot tell AMX from AVX512-BF16, nor Intel from AMD
        assert here["vendor"] and here["bf16_unit"] in ("amx", "avx512_bf16", "native", "emulated")
        assert (here["bf16_unit"] != "emulated") == here["native_bf16"]
        threads = torch.get_num_threads()  # kernels that split sums by thread: another count is another kind
        try:
            torch.set_num_threads(threads + 1)
            assert precision.arithmetic() == {**here, "threads": threads + 1}
        finally:
            torch.set_num_threads(threads)
    same = {f"lineage.machine.{k}": str(v).lower() for k, v in here.items()}
    assert machine_difference(same) is None and machine_difference({}) is None  # older versions recorded none
    for key in here:
        other = {**same, f"lineage.machine.{key}": "another"}
        note = machine_difference(other)
        assert note and note.startswith("made on another kind of machine") and f"{key}=another" in note
