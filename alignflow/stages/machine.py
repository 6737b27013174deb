"""machine: writes metrics/machine.json, what this machine's arithmetic is (see `alignflow.precision.arithmetic`).

Run: `python -m alignflow.stages.machine`. dvc.yaml marks the stage `always_changed` and makes every training and
evaluation stage depend on the file, so a dvc.lock made where `auto` meant bf16 is not up to date where it means
full precision: `dvc repro` reruns them. On a machine of the same kind the file comes out byte-identical and
nothing downstream reruns. It reads no params and logs nothing.
"""

from __future__ import annotations

from alignflow import paths
from alignflow.io import write_json
from alignflow.precision import arithmetic


def main() -> None:
    kind = arithmetic()
    write_json(paths.MACHINE, kind)
    print(f"machine: {', '.join(f'{k}={v}' for k, v in kind.items())}")


if __name__ == "__main__":
    main()
