"""Logs an operator can read: the fatal error at ERROR (also as Meltano parses it), SDK chatter
at DEBUG unless asked for, the rows-accepted METRIC kept."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pendo_emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET
from target_pendo.observe.logs import ChatterFilter, quiet_sdk_chatter

from ..singer import record, run_cli, schema, state

STREAM = "events"
CHATTER = (
    "Skipping parse of env var settings",
    "is full. Current size is",
    "batch_processing_time",
)


def config(base: dict, **extra: object) -> dict:
    spec = {"event_name": "Logs Test", "visitor_id_column": "user_id"}
    return {**base, "streams": {STREAM: spec}, **extra}


def lines(n: int) -> list[str]:
    out = [schema(STREAM)]
    out += [record(STREAM, {"id": i, "user_id": f"u-{i}"}) for i in range(n)]
    return [*out, state({"done": n})]


def meltano_logging_config(tmp_path: Path) -> Path:
    """The logging config Meltano 4 writes for a loader with the `structured-logging`
    capability (meltano.core.plugin.singer.base._get_sdk_logging with the SDK's
    StructuredFormatter); JSON is YAML, which the SDK reads."""
    path = tmp_path / "singer_sdk_logging.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {
                    "singer_formatter": {"()": "singer_sdk.logging.StructuredFormatter"}
                },
                "handlers": {
                    "console": {
                        "class": "logging.StreamHandler",
                        "formatter": "singer_formatter",
                        "stream": "ext://sys.stderr",
                    }
                },
                "root": {"handlers": ["console"], "level": "INFO"},
            }
        )
    )
    return path


def test_sdk_chatter_is_gone_and_the_pendo_metric_stays(emulator, base_config, tmp_path):
    result = run_cli(config(base_config, batch_size_rows=5), lines(12), tmp_path)
    assert result.returncode == 0, result.stderr
    for chatter in CHATTER:
        assert chatter not in result.stderr
    metrics = [x for x in result.stderr.splitlines() if "METRIC:" in x]
    assert metrics, result.stderr
    assert all('"endpoint":"pendo"' in m and "| INFO " in m for m in metrics)
    assert "stream 'events' (events): received 12, sent 12" in result.stderr


def test_sdk_chatter_shows_at_debug_when_asked(emulator, base_config, tmp_path):
    env = {"TARGET_PENDO_LOGLEVEL": "DEBUG"}
    result = run_cli(config(base_config, batch_size_rows=5), lines(12), tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    for chatter in CHATTER:
        (line, *_) = [x for x in result.stderr.splitlines() if chatter in x]
        assert "| DEBUG " in line


def test_a_fatal_error_is_one_error_line_and_the_cli_line(emulator, base_config, tmp_path):
    wrong = "wrong-track-secret-5150"
    result = run_cli(config(base_config, track_event_secret=wrong), lines(3), tmp_path)
    assert result.returncode == 1
    plain = [x for x in result.stderr.splitlines() if x.startswith("target-pendo: error:")]
    assert len(plain) == 1
    logged = [x for x in result.stderr.splitlines() if "| ERROR " in x]
    assert len(logged) == 1, result.stderr
    assert "Run failed: Pendo refused the key in setting 'track_event_secret'" in logged[0]
    assert plain[0].removeprefix("target-pendo: error: ") in logged[0]
    assert "target-pendo: error:" not in logged[0]
    assert wrong not in result.stderr


def test_a_sink_that_cannot_start_is_one_error_line(emulator, base_config, tmp_path):
    """A mapped field Pendo lacks fails in the sink's `setup()`, where the SDK logs its own
    "Error initializing target sink" line first: that line is at DEBUG, the reason at ERROR."""
    emulator.seed("visitor", ["v-1"])
    spec = {"sync": "visitor", "agent_fields": {"nickname": "plan"}}
    users = [
        schema("users", {"id": {"type": "string"}, "plan": {"type": "string"}}),
        record("users", {"id": "v-1", "plan": "Bo"}),
    ]
    cfg = {**base_config, "streams": {"users": spec}}
    result = run_cli(cfg, users, tmp_path)
    assert result.returncode == 1
    logged = [x for x in result.stderr.splitlines() if "| ERROR " in x]
    assert len(logged) == 1, result.stderr
    assert "agent field 'nickname'" in logged[0]
    assert "Error initializing target sink" not in result.stderr
    debug = run_cli(cfg, users, tmp_path, env={"TARGET_PENDO_LOGLEVEL": "DEBUG"})
    (line,) = [x for x in debug.stderr.splitlines() if "Error initializing target sink" in x]
    assert "| DEBUG " in line


def test_the_fatal_error_reaches_meltano_as_an_error(emulator, base_config, tmp_path):
    """What Meltano's SingerSDKLogParser reads: a JSON line with these keys, whose `level`
    it logs at. Without the ERROR record, Meltano showed the reason at info level."""
    env = {"SINGER_SDK_LOG_CONFIG": str(meltano_logging_config(tmp_path))}
    result = run_cli({**base_config, "streams": {}}, lines(3), tmp_path, env=env)
    assert result.returncode == 1
    records = []
    for line in result.stderr.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    required = {"level", "pid", "logger_name", "ts", "thread_name", "app_name", "message"}
    assert records
    assert all(required <= r.keys() for r in records)
    errors = [r for r in records if r["level"] == "error"]
    assert len(errors) == 1, result.stderr
    assert errors[0]["message"].startswith("Run failed: stream 'events' is not in setting")
    assert errors[0]["logger_name"] == "target-pendo"
    # no plain `target-pendo: error:` line besides: Meltano would show the error twice, the
    # second time at info level
    assert not [x for x in result.stderr.splitlines() if x.startswith("target-pendo: error:")]
    assert not any("Skipping parse of env var" in r["message"] for r in records)
    for secret in (DEMO_TRACK_SECRET, DEMO_INTEGRATION_KEY):
        assert secret not in result.stderr


def test_chatter_filter_lowers_only_chatter():
    logger = logging.getLogger("target-pendo-filter-test")
    logger.setLevel(logging.INFO)
    quiet_sdk_chatter(logger.name)
    quiet_sdk_chatter(logger.name)  # idempotent
    assert sum(isinstance(f, ChatterFilter) for f in logger.filters) == 1
    chatter = logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, "Skipping parse of env var settings...", (), None
    )
    other = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "a real line", (), None)
    assert logger.filters[0].filter(other) is True
    assert logger.filters[0].filter(chatter) is False
    assert chatter.levelname == "DEBUG"
    logger.setLevel(logging.DEBUG)
    assert logger.filters[0].filter(chatter) is True
