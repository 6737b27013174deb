"""Which precision this machine computes fast in: what `auto` means for mixed_precision and the sampling dtypes.

bf16 is fast on GPUs that support it and on CPUs with native bf16 instructions (AVX512-BF16, AMX). Elsewhere
(AVX2-only x86 CPUs) PyTorch emulates bf16 matrix products, far slower than fp32 (`bench/roofline.py` measures
both rates on a machine), which turns a run of minutes into one of hours; `auto` picks full precision there, and an
explicit bf16 there gets a warning.
"""

from __future__ import annotations

import functools
import logging
from typing import Literal

log = logging.getLogger(__name__)


@functools.cache
def bf16_is_fast() -> bool:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_bf16_unit() != "emulated"


def mixed_precision(setting: str, mode: str) -> Literal["no", "bf16", "fp16"]:
    """The autocast mode for `mode` (auto | no | bf16 | fp16): `auto` is bf16 where it is fast, fp16 on other
    GPUs, full precision on other CPUs."""
    import torch

    if mode == "auto":
        return "bf16" if bf16_is_fast() else "fp16" if torch.cuda.is_available() else "no"
    if mode == "bf16":
        warn_if_slow(setting)
    return mode  # type: ignore[return-value]


def weights_dtype(setting: str, name: str) -> Literal["float32", "bfloat16"]:
    """The torch dtype name for `name` (auto | float32 | bfloat16): `auto` is bfloat16 where it is fast."""
    if name == "auto":
        return "bfloat16" if bf16_is_fast() else "float32"
    if name == "bfloat16":
        warn_if_slow(setting)
    return name  # type: ignore[return-value]


def warn_if_slow(setting: str) -> None:
    if not bf16_is_fast():
        log.warning(
            "%s: bf16 on a processor without native bf16 (AVX512-BF16, AMX) runs far slower than full "
            "precision (bench/rollout.py measures it); set it to auto",
            setting,
        )


def arithmetic() -> dict[str, str | bool | int]:
    """What decides this machine's numbers: the device, the kernel family it dispatches to (ATen's CPU capability,
    or the GPU's compute capability), whether bf16 is native (what `auto` resolves by) and, on a CPU, the vendor,
    the unit that multiplies bf16 and the number of threads torch computes with. Two machines that agree on all of
    them compute the same results; the `machine` stage writes this for DVC to track.

    The vendor and the bf16 unit are there because ATen's capability is too coarse: an Intel Xeon with AMX and an
    AMD EPYC with AVX512-BF16 are both `AVX512` with native bf16, yet oneDNN multiplies bf16 on AMX tiles on one and
    with AVX512-BF16 dot products on the other, and math libraries choose kernels by vendor; the two trained
    different models from the same lock. The thread count is there because some CPU kernels split their sums by
    thread: BERT's gradients (the reward model's) in fp32 and bf16, and the bf16 attention of a decoding step, differ
    bitwise between 1 and 2 threads, so 2- and 4-core machines of one kind sample and train differently."""
    import torch

    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        kind: dict[str, str | bool | int] = {"device": "cuda", "capability": f"sm_{major}{minor}"}
    else:
        kind = {
            "device": "cpu",
            "capability": torch.backends.cpu.get_cpu_capability(),
            "vendor": cpu_vendor(),
            "bf16_unit": cpu_bf16_unit(),
            "threads": torch.get_num_threads(),
        }
    return {**kind, "native_bf16": bf16_is_fast()}


def cpu_vendor() -> str:
    """The CPU vendor's id (GenuineIntel, AuthenticAMD, ...), or the architecture where the OS does not say."""
    import platform
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() in ("vendor_id", "CPU implementer"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_bf16_unit() -> str:
    """What multiplies bf16 matrices here: `amx` tiles, `avx512_bf16` dot products, `native` (Arm's bf16 in oneDNN),
    or `emulated` (converted to fp32 and back, the slow path)."""
    import platform

    import torch

    if platform.machine().lower() in ("x86_64", "amd64"):
        if torch.cpu._is_amx_tile_supported():
            return "amx"
        return "avx512_bf16" if torch.cpu._is_avx512_bf16_supported() else "emulated"
    return "native" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "emulated"


def resolved_precisions(params) -> dict[str, str]:
    """What each training and evaluation section's `auto` became here: part of a version's lineage."""
    method = params.align.method
    resolved = {
        section: mixed_precision(f"{section}.mixed_precision", getattr(params, section).mixed_precision)
        for section in ("sft", "reward", method)
    }
    if method == "ppo":
        resolved["ppo.sampling"] = weights_dtype("ppo.sampling_dtype", params.ppo.sampling_dtype)
    resolved["evaluate"] = weights_dtype("evaluate.dtype", params.evaluate.dtype)
    return resolved
