"""Log lines an operator can read (docs/operating.md#logs): SDK chatter at DEBUG, the fatal
error at ERROR, since Meltano logs a plain (non-JSON) line at INFO.

Libraries' own warnings and errors (SQLAlchemy's pool traceback, urllib3's dropped connections)
go to DEBUG too: each failure also reaches the target as an exception, whose one error line
names the fix; 40 lines of traceback before it would hide it.
"""

from __future__ import annotations

import logging

from singer_sdk.logging import StructuredFormatter
from singer_sdk.metrics import METRICS_LOGGER_NAME, Point

# Message templates (the unformatted `msg`) the SDK logs at INFO that are chatter.
SDK_CHATTER = (
    "Skipping parse of env var settings...",
    "Parsing env var for settings config...",
    "Target sink for '%s' is full. Current size is '%s'. Draining...",
    "One or more records have exceeded the max age of %d minutes. Draining all sinks.",
    # logged when the input is read, long before the rows are sent: it read as the run's end
    "Reader '%s' completed processing %d lines of input (%d schemas, %d records, %d batch "
    "manifests, %d state messages, %d activate version messages).",
)
# ERROR lines of the SDK before the run's one error line, which names the stream and the fix
SDK_REPEATED_ERRORS = ("Error initializing target sink '%s'",)
KEPT_METRIC = ("record_count", "endpoint", "pendo")  # metric name, tag, value kept at INFO
# Libraries whose own warnings and errors go to DEBUG (their failures reach the target).
QUIET_LIBRARIES = ("sqlalchemy", "psycopg", "psycopg2", "urllib3", "requests")


def _is_chatter(record: logging.LogRecord) -> bool:
    # the template and arguments of the call (redact.py keeps them when it formats the line)
    template = getattr(record, "template", record.msg)
    args = getattr(record, "template_args", record.args)
    if record.levelno == logging.ERROR:
        return template in SDK_REPEATED_ERRORS
    if record.levelno != logging.INFO:
        return False
    if template in SDK_CHATTER:
        return True
    if template == "METRIC: %s" and isinstance(args, tuple) and args:
        point = args[0]
        if isinstance(point, Point):
            if point.metric_type == "counter" and point.value == 0:
                return True  # a count of nothing since the last line (a sink closing)
            name, tag, value = KEPT_METRIC
            return not (point.metric.value == name and point.tags.get(tag) == value)
    return False


def _lower_to_debug(record: logging.LogRecord) -> bool:
    """Make `record` a DEBUG one; whether its logger logs DEBUG (the level check ran before)."""
    record.levelno = logging.DEBUG
    record.levelname = logging.getLevelName(logging.DEBUG)
    return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


class ChatterFilter(logging.Filter):
    """On a logger: turns the SDK's chatter into DEBUG records, dropped unless DEBUG is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _is_chatter(record) or _lower_to_debug(record)


def quiet_sdk_chatter(plugin_logger_name: str) -> None:
    """Install the ChatterFilter (once) on the plugin's and SDK metrics' loggers: on loggers, it
    holds whatever handlers the SDK or Meltano set."""
    for name in (plugin_logger_name, METRICS_LOGGER_NAME):
        logger = logging.getLogger(name)
        if not any(isinstance(f, ChatterFilter) for f in logger.filters):
            logger.addFilter(ChatterFilter())


class LibraryErrorFilter(logging.Filter):
    """On a handler: QUIET_LIBRARIES' warnings and errors become DEBUG records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.name.split(".")[0] not in QUIET_LIBRARIES:
            return True
        return _lower_to_debug(record)


def quiet_library_errors(handlers: list[logging.Handler]) -> None:
    """Install the LibraryErrorFilter on `handlers` (once): a logger's filters see only its own
    records, and SQLAlchemy makes its pool's logger long after logging was set up."""
    for handler in handlers:
        if not any(isinstance(f, LibraryErrorFilter) for f in handler.filters):
            handler.addFilter(LibraryErrorFilter())


def log_fatal(message: str, *, logger_name: str, stopped: bool = False) -> bool:
    """Log the run's fatal error as one line, at ERROR (WARNING for a stop on a signal), when
    logging is set up. `message`, one redacted line, goes as an argument so the log redaction
    applies again. Returns whether it went out structured (JSON): then the plain
    `target-pendo: error:` line would only repeat it, at info level."""
    handlers = logging.getLogger().handlers
    if not handlers:
        return False
    logger = logging.getLogger(logger_name)
    if stopped:
        logger.warning("Run %s", message)  # "stopped by SIGTERM: ..."
    else:
        logger.error("Run failed: %s", message)
    return any(isinstance(h.formatter, StructuredFormatter) for h in handlers)
