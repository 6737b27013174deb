"""The stage order is written twice (dvc.yaml and the Prefect flow) and paths thrice: they must agree."""

import ast
import typing
from pathlib import Path

import yaml

from alignflow import paths
from alignflow.config import AlignParams

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
    for path in (
        paths.RAW_DATA,
        paths.BASE_MODEL,
        paths.ENCODER,
        paths.DEDUP_DATA,
        paths.SFT_MODEL,
        paths.REWARD_MODEL,
        paths.POLICY,
    ):
        assert str(path) in outs


def plumbing() -> set[str]:
    """The modules dvc.yaml's header leaves out of every stage's deps (its `# plumbing:` lines)."""
    lines = [line for line in (ROOT / "dvc.yaml").read_text().splitlines() if line.startswith("# plumbing:")]
    assert lines, "dvc.yaml's header needs `# plumbing: <module files>` lines"
    return {module for line in lines for module in line.removeprefix("# plumbing:").split()}


def module_file(name: str) -> Path | None:
    """alignflow.a.b -> alignflow/a/b.py (or its package's __init__.py); None if it is not a module."""
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, name: str) -> set[str]:
    """alignflow modules one file imports anywhere in it (top level, inside functions, relative imports)."""
    found = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if module_file(f"{base}.{alias.name}"))
    return {module for module in found if module.split(".")[0] == "alignflow" and module_file(module)}


def stage_code(stage: str) -> dict[str, list[str]]:
    """Every file of alignflow code `python -m alignflow.stages.<stage>` can run -> the import chain reaching it.

    Empty package markers (__init__.py with no code) cannot change an output and are left out.
    """
    start = f"alignflow.stages.{stage}"
    chains, todo = {start: [start]}, [start]
    while todo:
        name = todo.pop()
        for module in imported_modules(module_file(name), name):
            if module not in chains:
                chains[module] = chains[name] + [module]
                todo.append(module)
    files = {}
    for name, chain in chains.items():
        path = module_file(name)
        if path.name != "__init__.py" or path.read_text(encoding="utf-8").strip():
            files[path.relative_to(ROOT).as_posix()] = chain
    return files


def covered(module: str, deps: list[str]) -> bool:
    return any(module == dep or module.startswith(dep.rstrip("/") + "/") for dep in deps)


def test_every_stage_lists_all_the_code_it_runs():
    skipped = plumbing()
    missing = []
    for name, stage in dvc_stages().items():
        for module, chain in sorted(stage_code(name).items()):
            if module not in skipped and not covered(module, stage["deps"]):
                missing.append(
                    f"stage {name}: {module} (imported via {' -> '.join(chain)}) is neither in its deps "
                    "nor on dvc.yaml's plumbing line"
                )
    assert not missing, "\n".join(missing)


def test_listed_code_deps_exist_and_are_run_by_the_stage():
    for name, stage in dvc_stages().items():
        code = stage_code(name)
        for dep in stage["deps"]:
            if dep.startswith("alignflow"):
                assert (ROOT / dep).exists(), f"stage {name}: dep {dep} does not exist"
                assert any(covered(module, [dep]) for module in code), f"stage {name}: lists {dep} but never imports it"


def test_plumbing_modules_exist_and_are_not_listed_as_deps():
    for module in plumbing():
        assert (ROOT / module).is_file(), f"dvc.yaml plumbing line: {module} does not exist"
        for name, stage in dvc_stages().items():
            assert module not in stage["deps"], f"stage {name}: {module} is plumbing, not a dep"


def test_params_are_listed_by_key_and_exist():
    """No stage depends on the MLflow experiment name, and every listed key is in params.yaml (DVC needs it), also
    where it is interpolated (`${align.method}`: the chosen method's section) for every method."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    methods = typing.get_args(typing.get_type_hints(AlignParams)["method"])
    for name, stage in dvc_stages().items():
        listed = stage.get("params", [])
        keys = [key for key in listed if "${" not in key]
        keys += [method for key in listed if key == "${align.method}" for method in methods]
        for key in keys:
            assert key not in ("common", "common.experiment"), f"stage {name}: lists {key}; list common.seed instead"
            node = params
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"stage {name}: param {key} is not in params.yaml"
                node = node[part]
