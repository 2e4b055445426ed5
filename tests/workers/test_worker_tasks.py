"""Every job the relay enqueues is declared once (service.runtime.tasks) and run by exactly one
worker function registered under that name; producers in service/ reach the workers only
through those declarations."""

from __future__ import annotations

import ast
from pathlib import Path

from service.runtime.tasks import DECLARED_TASKS
from workers.worker import task_functions

ROOT = Path(__file__).resolve().parents[2]


def test_task_names_are_declared_once() -> None:
    names = [task.name for task in DECLARED_TASKS]

    assert len(names) == len(set(names))


def test_every_declared_task_has_exactly_one_worker_function_and_no_function_is_undeclared() -> (
    None
):
    registered = sorted(function.name for function in task_functions())

    assert registered == sorted(task.name for task in DECLARED_TASKS)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_service_modules_never_import_workers_except_the_command_that_runs_them() -> None:
    importers = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "service").rglob("*.py")
        if any(name.split(".")[0] == "workers" for name in imported_modules(path))
    )

    assert importers == ["service/cli/commands.py"]
