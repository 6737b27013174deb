"""The stage order is written twice (dvc.yaml and the Prefect flow) and paths thrice: they must agree."""
from pathlib import Path

import yaml

from alignflow import paths

ROOT = Path(__file__).resolve().parents[2]


def dvc_stages():
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_flow_runs_the_dvc_stages_in_dag_order():
    from flows.pipeline import STAGES

    stages = dvc_stages()
    assert list(STAGES) == list(stages)
    produced_by = {}
    for name, stage in stages.items():
        for out in stage.get("outs", []):
            produced_by[next(iter(out)) if isinstance(out, dict) else out] = name
    for position, name in enumerate(STAGES):
        for dep in stages[name].get("deps", []):
            producer = produced_by.get(dep)
            assert producer is None or STAGES.index(producer) < position, f"{name} runs before {producer}"


def test_every_stage_module_exists_and_writes_its_metrics_file():
    for name, stage in dvc_stages().items():
        assert stage["cmd"] == f"python -m alignflow.stages.{name}"
        assert (ROOT / "alignflow" / "stages" / f"{name}.py").is_file()
        metrics = [next(iter(m)) for m in stage["metrics"]]
        assert metrics == [str(paths.metrics_file(name))]


def test_declared_outputs_match_the_library_paths():
    outs = {next(iter(o)) for stage in dvc_stages().values() for o in stage.get("outs", [])}
    for path in (paths.RAW_DATA, paths.BASE_MODEL, paths.ENCODER, paths.DEDUP_DATA, paths.SFT_MODEL,
                 paths.REWARD_MODEL, paths.POLICY):
        assert str(path) in outs
