"""Structured logs: JSON lines in production, readable console lines in development.

Event-style names (`event.parked`, `gate.opened`) with bound ids; never a secret or token.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

from app.settings import Settings

# Keys whose values never reach a log line, whatever a caller binds by mistake.
REDACTED_KEYS = frozenset(
    {
        "authorization",
        "access_token",
        "refresh_token",
        "client_secret",
        "token",
        "code",
        "password",
        "secret",
    }
)


def _redact(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    for key in list(event_dict):
        if key.lower() in REDACTED_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(settings: Settings) -> None:
    renderer: structlog.types.Processor
    if settings.log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer()
    level = logging.getLevelName(settings.log_level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(stream=sys.stderr, level=max(level, logging.WARNING), force=True)
    redact_server_logs()


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


# Signed or single-use values travel in query strings (setup links, embed keys, OAuth state
# and code): a server log line quoting a URL must not carry them.
_SECRET_QUERY = re.compile(r"\b(sig|key|state|code|token|access_token)=[^&\s\"']+")


def _redact_urls(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    for key, value in event_dict.items():
        if isinstance(value, str) and "=" in value:
            event_dict[key] = _SECRET_QUERY.sub(r"\1=[redacted]", value)
    return event_dict


class _RedactQueries(logging.Filter):
    """Rewrites a stdlib record's message and arguments so that no signed or single-use query
    value survives: uvicorn's access log quotes every request line with its query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "=" in record.msg:
            record.msg = _SECRET_QUERY.sub(r"\1=[redacted]", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SECRET_QUERY.sub(r"\1=[redacted]", a) if isinstance(a, str) and "=" in a else a
                for a in record.args
            )
        return True


_REDACT_QUERIES = _RedactQueries()
# The server's loggers, whoever configured them (`procore-hooks api`, or `uvicorn app.main:app`
# with uvicorn's own logging configuration).
_SERVER_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error", "gunicorn.access")


def redact_server_logs() -> None:
    """Attach the query redaction to the server's loggers (idempotent)."""
    for name in _SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACT_QUERIES not in logger.filters:
            logger.addFilter(_REDACT_QUERIES)


def uvicorn_log_config(settings: Settings) -> dict[str, Any] | None:
    """uvicorn's own loggers (startup, shutdown, errors, access) in the service's JSON lines.

    None for console logs: uvicorn's default configuration is the readable one there."""
    if settings.log_format != "json":
        return None
    level = settings.log_level.upper()
    formatter = {
        "()": structlog.stdlib.ProcessorFormatter,
        "foreign_pre_chain": [
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            _redact_urls,
        ],
        "processors": [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    }
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": formatter},
        "handlers": {"json": handler},
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["json"], "level": level, "propagate": False},
        },
    }
