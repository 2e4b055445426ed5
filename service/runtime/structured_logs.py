"""Structured logs: JSON lines in production, readable console output in development.

Every line, from structlog or from the standard `logging` module (our modules, uvicorn, arq,
SQLAlchemy), goes through one processor chain that

* merges the ids bound with `log_context(...)` (webhook_event_id, activity_id, delivery_id,
  account, ...), held in contextvars so they follow one request or one job and nothing else,
  which ties a webhook to the activity it became and to each of its deliveries;
* redacts secrets: values of sensitive keys (token, authorization, private_pem, password,
  ...), anything that looks like a PEM private key, and the configured admin token and secret
  key wherever they appear.
"""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Final, TextIO

from service.runtime.settings import Settings

# Console output only: a process logging JSON (every worker and API in production) never
# needs rich or pygments, yet structlog and httpx import them whenever they are installed,
# about 20 MB per process.
CONSOLE_ONLY_MODULES: Final = ("rich", "pygments")


@contextmanager
def without_optional_modules(*names: str) -> Iterator[None]:
    """Imports inside the block see `names` as not installed, as libraries that use them
    only when present expect; later imports (the CLI's tables, console tracebacks) see them
    again. Modules already imported stay as they are."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]


with without_optional_modules(*CONSOLE_ONLY_MODULES):
    import structlog
    from structlog.types import EventDict, ExceptionRenderer, ExcInfo, Processor

REDACTED: Final = "[redacted]"
SENSITIVE_KEY = re.compile(
    r"(token|authorization|password|passwd|secret|private|api[_-]?key|cookie|signature_key)",
    re.IGNORECASE,
)
PRIVATE_KEY_PEM = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL
)
CONTEXT_KEYS: Final = ("webhook_event_id", "activity_id", "delivery_id", "account")
# user:password@ in database and Redis URLs.
URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@/\s]+@", re.IGNORECASE)


class SecretRedactor:
    """A structlog processor that removes secrets from every field of an event."""

    def __init__(self, secrets: list[str]) -> None:
        # Short values would redact innocent substrings; real tokens are long.
        self.secrets = [secret for secret in secrets if secret and len(secret) >= 8]

    def scrub(self, value: str) -> str:
        value = PRIVATE_KEY_PEM.sub(REDACTED, value)
        value = URL_PASSWORD.sub(rf"\g<scheme>:{REDACTED}@", value)
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def _clean(self, key: str, value: Any) -> Any:
        if SENSITIVE_KEY.search(key) and value not in (None, "", False):
            return REDACTED
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(key, item) for item in value]
        return value

    def __call__(self, _logger: Any, _name: str, event_dict: EventDict) -> EventDict:
        for key in list(event_dict):
            if key in ("exc_info", "stack_info"):
                continue
            event_dict[key] = self._clean(key, event_dict[key])
        return event_dict


def configured_secrets(settings: Settings) -> list[str]:
    """Every secret-looking setting (tokens, webhook secrets, keys), to scrub wherever it shows."""
    secrets = [settings.effective_secret_key]
    for name, value in settings.model_dump().items():
        if isinstance(value, str) and SENSITIVE_KEY.search(name):
            secrets.extend(part.strip() for part in value.split(","))
    return secrets


def _scrub_rendered(redactor: SecretRedactor) -> Processor:
    """Tracebacks are rendered late; scrub the final text too."""

    def processor(_logger: Any, _name: str, event_dict: EventDict) -> EventDict:
        for key in ("exception", "stack"):
            if isinstance(event_dict.get(key), str):
                event_dict[key] = redactor.scrub(event_dict[key])
        return event_dict

    return processor


def _shared_processors(redactor: SecretRedactor) -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.PositionalArgumentsFormatter(),
        redactor,
    ]


def _console_exception_formatter(redactor: SecretRedactor) -> ExceptionRenderer:
    """Rich's monochrome tracebacks with locals (what structlog picks when it sees rich),
    plain ones without rich; scrubbed, since the renderer draws them after the redactor ran."""
    draw: ExceptionRenderer
    try:
        from rich.console import Console
        from rich.traceback import Traceback
    except ImportError:
        draw = structlog.dev.plain_traceback
    else:

        def draw(sio: TextIO, exc_info: ExcInfo) -> None:
            sio.write("\n")
            Console(file=sio, color_system=None).print(
                Traceback.from_exception(*exc_info, show_locals=True, word_wrap=True)
            )

    def render(sio: TextIO, exc_info: ExcInfo) -> None:
        text = io.StringIO()
        draw(text, exc_info)
        sio.write(redactor.scrub(text.getvalue()))

    return render


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Configure structlog and the standard logging module for this process (idempotent)."""
    redactor = SecretRedactor(configured_secrets(settings))
    shared = _shared_processors(redactor)
    renderer: Processor
    if settings.log_format == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
        final: list[Processor] = [
            structlog.processors.dict_tracebacks,
            redactor,
            renderer,
        ]
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=_console_exception_formatter(redactor)
        )
        final = [_scrub_rendered(redactor), renderer]

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("fedirelay")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "fedirelay":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # uvicorn and arq install their own handlers; route their records through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "arq.worker"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Bind ids (webhook_event_id, activity_id, delivery_id, account, ...) to every log line
    emitted inside the block, in this task only."""
    present = {key: value for key, value in ids.items() if value is not None}
    with structlog.contextvars.bound_contextvars(**present):
        yield


def bind_log_context(**ids: Any) -> None:
    """Bind ids for the rest of the current task (a request or a job)."""
    structlog.contextvars.bind_contextvars(
        **{key: value for key, value in ids.items() if value is not None}
    )


def clear_log_context() -> None:
    structlog.contextvars.clear_contextvars()


async def bind_job_context(ctx: MutableMapping[str, Any]) -> None:
    """arq `on_job_start` hook: each job starts with a clean context naming the job."""
    clear_log_context()
    bind_log_context(job_id=ctx.get("job_id"), job_try=ctx.get("job_try"))


class RequestLogContext:
    """ASGI middleware: a clean log context per request, carrying its method and path."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        clear_log_context()
        bind_log_context(method=scope.get("method"), path=scope.get("path"))
        await self.app(scope, receive, send)
