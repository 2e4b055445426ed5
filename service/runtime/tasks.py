"""Every job the relay puts on its arq queue, declared once: the task's name in Redis and the
argument its producers pass.

Producers enqueue through `JobQueue.enqueue(<declaration>, argument)`; workers/worker.py
registers each worker function under its declaration's name (tests/workers checks that every
declared task has exactly one worker function and that no worker function is undeclared).
The names are those the workers' Python functions had before: jobs already waiting in Redis
when a relay is upgraded still find their function.

Periodic work (the sweepers, polls, snapshots) runs as arq cron jobs, which nobody enqueues.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

Argument = TypeVar("Argument")


# Not slotted: `Task[int]("name")` sets `__orig_class__`, which a frozen slotted dataclass
# refuses with a TypeError.
@dataclass(frozen=True)
class Task(Generic[Argument]):
    """One kind of job; `Argument` is the type of the one argument it is enqueued with."""

    name: str


# Fan-out: deliver every due delivery of these activities (row ids).
DELIVER_ACTIVITIES: Final[Task[list[int]]] = Task("deliver_activities")
# Apply one received inbox activity (row id): the inbox sweeper's unit.
PROCESS_INBOX_ACTIVITY: Final[Task[int]] = Task("process_inbox_activity")
# Apply a batch of received inbox activities the inbox stored together (row ids).
PROCESS_INBOX_ACTIVITIES: Final[Task[list[int]]] = Task("process_inbox_activities")
# Turn stored webhook deliveries into posts (row ids, in arrival order).
PROCESS_WEBHOOK_EVENTS: Final[Task[list[int]]] = Task("process_webhook_events")
# Publish a scheduled post at its time (post id).
PUBLISH_SCHEDULED_POST: Final[Task[int]] = Task("publish_scheduled_post")

DECLARED_TASKS: Final[tuple[Task[Any], ...]] = (
    DELIVER_ACTIVITIES,
    PROCESS_INBOX_ACTIVITY,
    PROCESS_INBOX_ACTIVITIES,
    PROCESS_WEBHOOK_EVENTS,
    PUBLISH_SCHEDULED_POST,
)
