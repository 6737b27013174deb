"""No code from the Hugging Face hub at import time.

On CPUs with AVX512-BF16, importing bitsandbytes (which peft and transformers do whenever it is installed) asks the
`kernels` package for `kernels-community/quantization-bitsandbytes`: a lookup on the hub that may download and
run compiled code, whatever `trust_remote_code` says, and that prints a warning when it fails offline. While
bitsandbytes imports, the import hook below hides `kernels` from it, so it takes its own bundled CPU kernels,
quietly; `kernels` stays importable for everything else. Installed when `alignflow` is imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
from types import ModuleType

GUARDED = "bitsandbytes"


class _WithoutHubKernels(importlib.abc.MetaPathFinder):
    """Find bitsandbytes as usual, but execute it with `kernels` unimportable and its failed-lookup log muted."""

    def find_spec(self, name, path=None, target=None):
        if name != GUARDED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _GuardedLoader(spec.loader)
        return spec


class _GuardedLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        hidden = sys.modules.get("kernels", ...)
        sys.modules["kernels"] = None  # `from kernels import get_kernel` raises ImportError
        muted = logging.getLogger(GUARDED)
        level = muted.level
        muted.setLevel(logging.ERROR)
        try:
            self.loader.exec_module(module)
        finally:
            muted.setLevel(level)
            if hidden is ...:
                sys.modules.pop("kernels", None)
            else:
                sys.modules["kernels"] = hidden


def install() -> None:
    """Put the guard first on the import path (once); a no-op when bitsandbytes was imported already."""
    if GUARDED not in sys.modules and not any(isinstance(f, _WithoutHubKernels) for f in sys.meta_path):
        sys.meta_path.insert(0, _WithoutHubKernels())
