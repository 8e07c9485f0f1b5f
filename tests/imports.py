"""Static import analysis of the repository's own code (ast, nothing is imported or run).

Used by tests/test_architecture.py (the library's layers; each DVC stage's exact code dependencies) and as a
command that prints what `dvc.yaml` should list:

    ./run.sh python -m tests.imports            # the code dependencies of every stage entry point
    ./run.sh python -m tests.imports --write    # rewrite the code entries of dvc.yaml's deps to match
"""
from __future__ import annotations

import ast
import re
import sys
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
OWN_PACKAGES = ("pipeline", "stages", "flows")

# How a stage runs, never what it writes: none of it is a DVC dependency. `pipeline.parallel` and the runners
# are proven output-neutral by tests/orchestration/test_parallel.py and test_prefect.py (same bytes on every
# runner); `pipeline.orchestration` holds settings, DDP launch, download planning and the rebuild summary;
# `stages.common` the CLI plumbing; `flows` the Prefect face of the same stage functions.
RUNNER_MODULES = ("pipeline.parallel", "pipeline.orchestration", "stages.common", "flows")


def module_path(module: str) -> Path | None:
    """The file of one of our modules (`pipeline.models.vae` -> pipeline/models/vae.py), None if not ours."""
    if module.split(".")[0] not in OWN_PACKAGES:
        return None
    base = REPO_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    parts = list(path.resolve().relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@lru_cache(maxsize=None)
def direct_imports(module: str) -> frozenset[str]:
    """Our modules that `module` imports anywhere in its file (top level or inside functions), and the
    packages those imports load on the way (`a.b.c` also runs `a/__init__.py` and `a/b/__init__.py`)."""
    path = module_path(module)
    if path is None:
        return frozenset()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from a import b`: b is a submodule when it has a file, else a name inside a
            targets = [f"{base}.{alias.name}" if module_path(f"{base}.{alias.name}") else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            for depth in range(1, len(parts) + 1):
                name = ".".join(parts[:depth])
                if module_path(name) is not None:
                    found.add(name)
    found.discard(module)
    return frozenset(found)


def closure(module: str) -> set[str]:
    """`module` and every module of ours it imports, transitively."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(direct_imports(current))
    return seen


def is_runner(module: str) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in RUNNER_MODULES)


def is_docstring_only(path: Path) -> bool:
    """A file with nothing but a docstring (an empty package `__init__`) cannot change an output."""
    body = ast.parse(path.read_text()).body
    return all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body)


def code_dependencies(entry: str) -> list[str]:
    """The files a stage's output can depend on: its entry module and everything it imports, less the runner
    modules (and what only they import) and docstring-only package files; repository-relative paths."""
    seen, todo = set(), [entry]
    while todo:  # a walk that does not enter runner modules: what only they import is not a dependency
        current = todo.pop()
        if current in seen or (current != entry and is_runner(current)):
            continue
        seen.add(current)
        todo.extend(direct_imports(current))
    files = [module_path(name) for name in seen]
    return sorted(p.relative_to(REPO_ROOT).as_posix() for p in files if p is not None and not is_docstring_only(p))


def library_modules() -> list[str]:
    return sorted(module_name(p) for p in (REPO_ROOT / "pipeline").rglob("*.py"))


def write_dvc_yaml(path: Path = REPO_ROOT / "dvc.yaml") -> None:
    """Replace the code entries (pipeline/, stages/, flows/) of every stage's `deps` by what its entry point
    imports, keeping every other entry, the order of the rest and the comments (ruamel round trip)."""
    from ruamel.yaml import YAML

    from tests.test_architecture import CODE_ROOTS

    yaml = YAML()
    yaml.width = 4096  # one line per command: ruamel would re-fold them with trailing spaces
    yaml.indent(mapping=2, sequence=4, offset=2)
    document = yaml.load(path.read_text())
    for stage in document["stages"].values():
        body = stage.get("do", stage)
        entry = re.search(r"python -m ([\w.]+)", str(body["cmd"])).group(1)
        kept = [dep for dep in body["deps"] if not str(dep).startswith(CODE_ROOTS)]
        body["deps"].clear()
        body["deps"].extend(kept + code_dependencies(entry))  # the stage's data first, then its code
    yaml.dump(document, path)


def main() -> None:
    from tests.test_architecture import stage_entry_points

    if "--write" in sys.argv[1:]:
        write_dvc_yaml()
        return
    for stage, entry in stage_entry_points().items():
        print(f"{stage}:  # python -m {entry}")
        for path in code_dependencies(entry):
            print(f"  - {path}")


if __name__ == "__main__":
    sys.exit(main())
