"""The pairing of a declared task (service.runtime.tasks) with the worker function that runs it.

Task modules list their pairs in `TASKS`; workers/worker.py registers each function with arq
under the declared name, never under the function's Python name, so renaming a function
cannot strand the jobs producers enqueue. The type checker holds the function to the
declaration's argument type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from arq.worker import Function, func

from service.runtime.tasks import Task

if TYPE_CHECKING:
    from arq.typing import WorkerCoroutine

Argument = TypeVar("Argument")


@dataclass(frozen=True)
class TaskFunction(Generic[Argument]):
    task: Task[Argument]
    run: Callable[[dict[str, Any], Argument], Awaitable[object]]

    def arq_function(self) -> Function:
        # arq types every job function as taking any arguments; ours take exactly one.
        return func(cast("WorkerCoroutine", self.run), name=self.task.name)
