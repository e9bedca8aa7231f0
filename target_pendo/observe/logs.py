"""Log lines an operator can read: SDK chatter at DEBUG, the fatal error at ERROR.

Meltano (with the loader's `structured-logging` capability) logs each JSON line of the SDK's
`StructuredFormatter` at its `level`, but a plain line (the CLI's `target-pendo: error: ...`)
at INFO: `log_fatal` logs the fatal error through logging too, at ERROR, so that it arrives as
an error there, and as a `| ERROR |` line that log collectors pick up elsewhere.

Chatter, the SDK's lines no operator acts on ("Skipping parse of env var settings...", "Target
sink for 'x' is full ... Draining...", METRIC lines timing batches), goes to DEBUG, which
`TARGET_PENDO_LOGLEVEL=DEBUG` still shows. The METRIC `record_count` tagged `endpoint: pendo`
(rows Pendo accepted) stays at INFO: it is the one count of delivered rows in the SDK's
machine-readable form, which Meltano passes on and dashboards graph.

Libraries' own warnings and errors (SQLAlchemy's pool traceback when the ledger's database goes
away, urllib3's dropped connections) go to DEBUG too: each such failure also reaches the target
as an exception, whose one error line names the fix; 40 lines of traceback before it would hide
it.
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
    # logged when the input is read, often long before the rows are sent: it read as the end
    # of the run (the target says itself when the input ends, and when the run is over)
    "Reader '%s' completed processing %d lines of input (%d schemas, %d records, %d batch "
    "manifests, %d state messages, %d activate version messages).",
)
# ERROR lines of the SDK that only precede the run's one error line: a sink's `setup()` failed
# (a busy lease, a mapped field Pendo lacks), and what it raised names the stream and the fix.
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
    """Make `record` a DEBUG one; whether its logger would have logged it at DEBUG (the
    level check was done, at the record's own level, before any filter ran)."""
    record.levelno = logging.DEBUG
    record.levelname = logging.getLevelName(logging.DEBUG)
    return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


class ChatterFilter(logging.Filter):
    """On a logger: turns the SDK's chatter into DEBUG records, dropped unless DEBUG is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _is_chatter(record) or _lower_to_debug(record)


def quiet_sdk_chatter(plugin_logger_name: str) -> None:
    """Install the ChatterFilter on the plugin's logger and the SDK's metrics logger (once).
    Filters live on the loggers, not on handlers, so they hold whatever handlers the SDK or
    Meltano's logging config puts on the root logger."""
    for name in (plugin_logger_name, METRICS_LOGGER_NAME):
        logger = logging.getLogger(name)
        if not any(isinstance(f, ChatterFilter) for f in logger.filters):
            logger.addFilter(ChatterFilter())


class LibraryErrorFilter(logging.Filter):
    """On a handler: the warnings and errors of QUIET_LIBRARIES' loggers become DEBUG
    records, kept (traceback and all) only when their logger has DEBUG on."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.name.split(".")[0] not in QUIET_LIBRARIES:
            return True
        return _lower_to_debug(record)


def quiet_library_errors(handlers: list[logging.Handler]) -> None:
    """Install the LibraryErrorFilter on `handlers` (the root logger's, once logging is set
    up). On the handlers, not on the libraries' loggers: a logger's filters see only the
    records of that very logger, and SQLAlchemy makes its pool's logger when the pool is made,
    long after logging was set up."""
    for handler in handlers:
        if not any(isinstance(f, LibraryErrorFilter) for f in handler.filters):
            handler.addFilter(LibraryErrorFilter())


def log_fatal(message: str, *, logger_name: str, stopped: bool = False) -> bool:
    """Log the error that ends the run as one line, at ERROR (WARNING for a stop on a
    signal, which an orchestrator asked for), when logging is set up (the sync command; the
    `ledger`/`check`/`report` commands print their one line only). `message` must already be
    one line and redacted; it goes as an argument, so the log redaction applies again and
    the structured formatter cannot skip it. Returns whether the line went out structured
    (JSON): then the plain `target-pendo: error:` line would only repeat it, at info level."""
    handlers = logging.getLogger().handlers
    if not handlers:
        return False
    logger = logging.getLogger(logger_name)
    if stopped:
        logger.warning("Run %s", message)  # "stopped by SIGTERM: ..."
    else:
        logger.error("Run failed: %s", message)
    return any(isinstance(h.formatter, StructuredFormatter) for h in handlers)
