"""The shape of the code, checked: the library's packages form layers without cycles, and every DVC stage
lists exactly the code its entry point imports (so `dvc repro` re-runs a stage when, and only when, code that
can change its outputs changed). `./run.sh python -m tests.imports` prints the lists dvc.yaml should hold."""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from tests.imports import (
    REPO_ROOT,
    code_dependencies,
    direct_imports,
    is_runner,
    library_modules,
    module_path,
)

# Lower layers never import higher ones; packages of one layer may import each other, without cycles.
LAYERS = {
    "audio": 0, "features": 0, "metrics": 0, "shards": 0, "config": 0, "parallel": 0,
    "corpora": 1, "mixing": 1, "models": 1,
    "inference": 2, "separators": 2, "evaluation": 2, "enhance": 2, "reports": 2, "generation": 2,
    "orchestration": 3, "testing": 3,
}
CODE_ROOTS = ("pipeline/", "stages/", "flows/")


def package_of(module: str) -> str | None:
    """`pipeline.models.vae` -> `models`; None for the `pipeline` package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "pipeline" else None


def layer_violations(edges: set[tuple[str, str]]) -> list[str]:
    """Every import edge (importer, imported) between library modules that goes up a layer, that leaves the
    library for stages/ or flows/, or that closes a cycle between packages; one sentence each."""
    problems = []
    graph: dict[str, set[str]] = defaultdict(set)
    witness: dict[tuple[str, str], tuple[str, str]] = {}
    for importer, imported in sorted(edges):
        if imported.split(".")[0] in ("stages", "flows"):
            problems.append(f"{importer} imports {imported}: the library never imports stages/ or flows/")
            continue
        source, target = package_of(importer), package_of(imported)
        if source is None or target is None or source == target:
            continue
        for package in (source, target):
            if package not in LAYERS:
                problems.append(f"package pipeline.{package} has no layer in tests/test_architecture.py LAYERS")
        if source not in LAYERS or target not in LAYERS:
            continue
        if LAYERS[target] > LAYERS[source]:
            problems.append(f"{importer} imports {imported}: {source} (layer {LAYERS[source]}) must not import "
                            f"{target} (layer {LAYERS[target]})")
        graph[source].add(target)
        if len(imported) > len(witness.get((source, target), ("", ""))[1]):  # a module rather than its package
            witness[(source, target)] = (importer, imported)
    for cycle in _cycles(graph):
        hops = [f"{witness[(a, b)][0]} -> {witness[(a, b)][1]}" for a, b in zip(cycle, cycle[1:] + cycle[:1])]
        problems.append(f"packages {' -> '.join(cycle + cycle[:1])} import each other in a cycle: " + "; ".join(hops))
    return sorted(set(problems))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(_cycle_through(sorted(component), graph))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def _cycle_through(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A simple cycle inside a strongly connected component, starting at its first package."""
    start, members = component[0], set(component)
    paths = [[start]]
    while paths:
        path = paths.pop(0)
        for nxt in sorted(graph[path[-1]] & members):
            if nxt == start:
                return path
            if nxt not in path:
                paths.append(path + [nxt])
    return component


def library_edges() -> set[tuple[str, str]]:
    """(importer, imported) for every library module; an import of `a.b.c` counts once, not also as `a.b`."""
    edges = set()
    for module in library_modules():
        imported = direct_imports(module)
        edges |= {(module, name) for name in imported
                  if not any(other.startswith(name + ".") for other in imported)}
    return edges


def stage_entry_points() -> dict[str, str]:
    """Every stage of dvc.yaml (foreach resolved by DVC itself) -> the module its command runs."""
    from dvc.repo import Repo

    entries = {}
    with Repo(str(REPO_ROOT)) as repo:
        for stage in repo.index.stages:
            match = re.search(r"python -m ([\w.]+)", stage.cmd or "")
            assert match, f"stage {stage.addressing}: command {stage.cmd!r} does not run `python -m <module>`"
            entries[stage.addressing] = match.group(1)
    return entries


def listed_code_dependencies() -> dict[str, set[str]]:
    """Per stage, the .py files its `deps` name under pipeline/, stages/, flows/ (a folder: every .py in it)."""
    from dvc.repo import Repo

    listed = {}
    with Repo(str(REPO_ROOT)) as repo:
        for stage in repo.index.stages:
            files: set[str] = set()
            for dep in stage.deps:
                path = Path(dep.def_path)
                if not path.as_posix().startswith(CODE_ROOTS):
                    continue
                full = REPO_ROOT / path
                found = sorted(full.rglob("*.py")) if full.is_dir() else [full]
                files |= {p.relative_to(REPO_ROOT).as_posix() for p in found}
            listed[stage.addressing] = files
    return listed


def dependency_mismatches(listed: dict[str, set[str]], expected: dict[str, set[str]]) -> list[str]:
    """For each stage, what dvc.yaml lists that the entry point does not import, and what it misses."""
    problems = []
    for stage in sorted(expected):
        have = {path for path in listed.get(stage, set()) if not _docstring_only_init(path)}
        extra, missing = sorted(have - expected[stage]), sorted(expected[stage] - have)
        if extra:
            problems.append(f"{stage}: dvc.yaml lists {extra}, which `{stage}` does not import (or only its "
                            f"runner code does)")
        if missing:
            problems.append(f"{stage}: dvc.yaml misses {missing}, which `{stage}` imports")
    return problems


def _docstring_only_init(path: str) -> bool:
    from tests.imports import is_docstring_only

    return path.endswith("__init__.py") and is_docstring_only(REPO_ROOT / path)


# ------------------------------------------------------------------------------------------------------------
# The real tree


def test_the_library_packages_form_layers_without_cycles():
    assert layer_violations(library_edges()) == []


def test_every_library_package_has_a_layer():
    packages = {package_of(module) for module in library_modules()} - {None}
    assert packages <= set(LAYERS), f"packages without a layer: {sorted(packages - set(LAYERS))}"


def test_dvc_yaml_lists_exactly_the_code_each_stage_imports():
    expected = {stage: set(code_dependencies(entry)) for stage, entry in stage_entry_points().items()}
    assert dependency_mismatches(listed_code_dependencies(), expected) == []


def test_stage_templates_without_instances_list_exactly_their_code_too():
    # `prepare_folder` has no stage until a folder is configured: check the template itself
    import yaml

    for name, stage in yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"].items():
        body = stage.get("do", stage)
        entry = re.search(r"python -m ([\w.]+)", body["cmd"]).group(1)
        listed = {dep for dep in body["deps"] if str(dep).startswith(CODE_ROOTS)}
        assert dependency_mismatches({name: listed}, {name: set(code_dependencies(entry))}) == []


def test_no_stage_depends_on_runner_code():
    for stage, files in listed_code_dependencies().items():
        runners = [f for f in files if is_runner(Path(f).with_suffix("").as_posix().replace("/", "."))
                   and not f.startswith("stages/common")]
        assert not runners, f"{stage} depends on runner code {runners}: it cannot change the stage's outputs"


# ------------------------------------------------------------------------------------------------------------
# The checks themselves fail on deliberate violations


def test_an_upward_import_is_named():
    problems = layer_violations({("pipeline.models.train", "pipeline.reports.plots")})
    assert problems == ["pipeline.models.train imports pipeline.reports.plots: models (layer 1) must not import "
                        "reports (layer 2)"]


def test_a_cycle_within_a_layer_is_named_with_its_edges():
    problems = layer_violations({("pipeline.corpora.prepare", "pipeline.mixing.build"),
                                 ("pipeline.mixing.catalog", "pipeline.corpora.folder")})
    assert problems == ["packages corpora -> mixing -> corpora import each other in a cycle: "
                        "pipeline.corpora.prepare -> pipeline.mixing.build; "
                        "pipeline.mixing.catalog -> pipeline.corpora.folder"]


def test_importing_stages_or_flows_from_the_library_is_named():
    assert layer_violations({("pipeline.evaluation.run", "flows.runners")}) == [
        "pipeline.evaluation.run imports flows.runners: the library never imports stages/ or flows/"]


def test_a_missing_and_an_extra_dvc_dependency_are_named():
    expected = {"train@v": {"pipeline/features/wiener.py", "pipeline/models/vae.py"}}
    listed = {"train@v": {"pipeline/models/vae.py", "pipeline/orchestration/dvc.py"}}
    assert dependency_mismatches(listed, expected) == [
        "train@v: dvc.yaml lists ['pipeline/orchestration/dvc.py'], which `train@v` does not import (or only its "
        "runner code does)",
        "train@v: dvc.yaml misses ['pipeline/features/wiener.py'], which `train@v` imports"]


def test_imports_inside_functions_and_submodules_named_in_from_imports_count():
    imported = direct_imports("stages.prepare")  # `run` imports the library inside the function
    assert {"pipeline.corpora.prepare", "pipeline.config", "pipeline.shards"} <= imported
    assert "pipeline.corpora" in imported  # the package it passes through runs too
    # `from pipeline.reports import html as H` imports the module pipeline/reports/html.py
    assert "pipeline.reports.html" in direct_imports("pipeline.reports.site")


@pytest.mark.parametrize("runner", ["pipeline.parallel", "pipeline.orchestration.settings", "flows.runners"])
def test_runner_modules_are_never_code_dependencies(runner):
    assert is_runner(runner)
    assert not any(dep.startswith(module_path(runner).relative_to(REPO_ROOT).as_posix())
                   for dep in code_dependencies("stages.prepare"))
