"""Importing the project's training code asks the network for nothing, even where the hub is allowed: on a CPU with
AVX512-BF16, bitsandbytes would otherwise look up (and could download and run) a kernel from the hub."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args[:2])
    raise OSError("no network in this test")
socket.getaddrinfo = refuse
socket.socket.connect = refuse
if sys.argv[1] == "bitsandbytes first":
    import bitsandbytes
import alignflow.stages.sft, alignflow.stages.align, peft, bitsandbytes
print("network attempts:", len(attempts))
"""


def probe(order: str) -> subprocess.CompletedProcess:
    online = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    return subprocess.run([sys.executable, "-c", PROBE, order], env=online, capture_output=True, text=True, timeout=300)


def test_importing_the_training_code_makes_no_network_call_and_prints_no_kernel_warning():
    result = probe("alignflow first")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "network attempts: 0" in result.stdout and "kernels-community" not in result.stderr


def test_bitsandbytes_without_the_guard_is_what_the_guard_prevents():
    """The control: imported before alignflow, bitsandbytes reaches for the hub on CPUs with AVX512-BF16."""
    if not _has_avx512_bf16():
        pytest.skip("machine: bitsandbytes asks the hub only on CPUs with AVX512-BF16")
    result = probe("bitsandbytes first")
    assert "network attempts: 0" not in result.stdout, result.stdout


def _has_avx512_bf16() -> bool:
    try:
        return "avx512_bf16" in open("/proc/cpuinfo").read()
    except OSError:
        return False
