"""The structure docs/architecture.md describes, checked on the import graph (grimp).

import-linter (``lint-imports`` in ``make test``, contracts in pyproject.toml) holds the layers;
these tests hold what a layers contract cannot say: no cycle between any two modules, imports
inside functions counted; nothing imports the edge (views, APIs, URLs, tasks, forms, commands);
an import inside a function only where Django or the worker's fork-safety needs one; and
none of the engine's own modules imported inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

from tests.conftest import REPO_ROOT

PACKAGES = ("compliance", "requests_app", "unlearning_jobs")
EDGE_NAMES = {"views", "apis", "urls", "api_urls", "tasks", "forms", "admin"}


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(*PACKAGES, include_external_packages=False)


def _is_edge(module: str) -> bool:
    parts = module.split(".")
    return (
        parts[-1] in EDGE_NAMES or "management" in parts or "templatetags" in parts or "migrations" in parts
    )


def _cycles(graph) -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan)."""
    modules = sorted(m for m in graph.modules if ".migrations" not in m)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    for root in modules:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in edges:
                    continue
                if successor not in index:
                    index[successor] = low[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(edges[successor])))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_imports_another_that_imports_it_back(graph):
    assert _cycles(graph) == []


def test_nothing_but_the_edge_imports_the_edge(graph):
    wrong = []
    for module in sorted(graph.modules):
        if not _is_edge(module):
            continue
        for importer in graph.find_modules_that_directly_import(module):
            if not _is_edge(importer) and importer not in {"compliance.urls", "compliance.api_urls"}:
                wrong.append(f"{importer} -> {module}")
    assert wrong == []


# Imports that run inside a function, and why each may: Django wires apps in AppConfig.ready();
# the settings and the Celery app load before Django is set up; the worker's parent process must
# never load torch (unlearning_jobs/workers/forksafe.py), so the ML engine is imported where a
# job runs it, not where its module is imported.
LAZY_ALLOWED_MODULES = {
    "compliance/apps.py",
    "compliance/settings.py",
    "compliance/celery.py",
    "unlearning_jobs/workers/heartbeat.py",
}


def _function_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and inner.module and inner.level == 0:
                    found.append((inner.lineno, inner.module))
                elif isinstance(inner, ast.Import):
                    found.extend((inner.lineno, alias.name) for alias in inner.names)
    return found


def test_a_function_imports_a_project_module_only_where_django_or_fork_safety_needs_it():
    wrong = []
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            relative = path.relative_to(REPO_ROOT).as_posix()
            if "/migrations/" in relative or "/engine/" in relative or relative in LAZY_ALLOWED_MODULES:
                continue
            for line, module in _function_imports(path):
                if module.startswith(PACKAGES) and not module.startswith("unlearning_jobs.engine"):
                    wrong.append(f"{relative}:{line} imports {module}")
    assert wrong == []


def _relative_function_imports(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return sorted(
        inner.lineno
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for inner in ast.walk(node)
        if isinstance(inner, ast.ImportFrom) and inner.level > 0
    )


def test_the_engine_imports_its_own_modules_at_the_top():
    """Inside the engine a function may load a heavy library late (torch, transformers, peft,
    Presidio: a module that does not need them stays importable without them), never one of the
    engine's own modules: none is needed to break a cycle,
    and a module's imports at its top are what it depends on, read in one place."""
    wrong = [
        f"{path.relative_to(REPO_ROOT).as_posix()}:{line}"
        for path in sorted((REPO_ROOT / "unlearning_jobs" / "engine").rglob("*.py"))
        for line in _relative_function_imports(path)
    ]
    assert wrong == []
