"""Structured JSON logs. Request id and tenant id ride along in context variables.

Secrets and message bodies are never passed to a logger; `redact` guards the keys that could
carry them should one slip into an event anyway.
"""

import logging
import sys
from typing import Any

import structlog

SENSITIVE_KEYS = frozenset({"authorization", "api_key", "secret", "password", "token", "body", "cookie"})


def redact(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in event.keys() & SENSITIVE_KEYS:
        event[key] = "[redacted]"
    return event


def configure_logging(level: str = "INFO") -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.processors.format_exc_info],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log would duplicate ours, without the request id.
    logging.getLogger("uvicorn.access").disabled = True
