"""`fedirelay worker` with arq options overridden, to test a hypothesis about the engine.

    python -m bench.worker_variant '{"poll_delay": 0.02}'

Used by benchmarks to show what a configuration change would buy before it is made in
``workers/worker.py``; the figures of record always use the unmodified worker.
"""

from __future__ import annotations

import json
import sys

from arq.worker import run_worker

from service.runtime.settings import get_settings
from workers.worker import worker_settings


def main() -> None:
    overrides = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    run_worker(worker_settings(get_settings(), **overrides))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
