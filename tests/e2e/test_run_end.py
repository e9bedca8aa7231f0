"""The end of a run, as a person reads it: no line that looks like the end before it, rejected
rows counted at WARNING with where they are, one last line saying the run finished; progress
with a share done and time left when the input's size is known. Through the real CLI."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from ..singer import (
    TARGET_CMD,
    lines_to_text,
    log_files,
    record,
    run_cli,
    schema,
    state,
    target_cmd_with_progress_every,
)

STREAM = "events"
SPEC = {"event_name": "End Test", "visitor_id_column": "user_id"}
# progress every 0.2 s instead of every 30 s
FAST_PROGRESS_CMD = target_cmd_with_progress_every(0.2)


def rows(n: int, missing_visitor: set[int] = frozenset()) -> list[str]:
    out = [schema(STREAM)]
    out += [
        record(STREAM, {"id": i, "user_id": None if i in missing_visitor else f"u-{i}"})
        for i in range(n)
    ]
    return [*out, state({"n": n})]


def test_rejected_rows_are_counted_at_warning_with_where_they_are(base_config, tmp_path):
    config = {**base_config, "streams": {STREAM: SPEC}}
    result = run_cli(config, rows(6, missing_visitor={1, 4}), tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if "row(s) rejected" in x]
    assert "| WARNING " in line
    folder = Path(config["state_dir"]).resolve() / "rejects"
    assert f"2 row(s) rejected ('{STREAM}' 2): each with its reason in {folder}/" in line
    (path,) = log_files(config["state_dir"], "rejects", STREAM)
    assert path.parent == folder / STREAM
    run_id = line.rsplit("target-pendo report ", 1)[1].strip()
    shown = subprocess.run(
        [*TARGET_CMD, "--config", str(tmp_path / "config.json"), "report", run_id],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "state_dir/rejects/<stream>/<day>.jsonl" in shown.stdout
    clean = run_cli(config, rows(3), tmp_path)
    assert "rejected (" not in clean.stderr


def test_nothing_reads_as_the_end_before_the_last_line(base_config, tmp_path):
    result = run_cli({**base_config, "streams": {STREAM: SPEC}}, rows(5), tmp_path)
    assert result.returncode == 0, result.stderr
    logged = [x for x in result.stderr.splitlines() if " | " in x]
    assert not any("completed processing" in x for x in logged)
    (read,) = [i for i, x in enumerate(logged) if "Input read to its end (7 lines)" in x]
    assert re.search(r"Run \S+ finished in .+: succeeded\.$", logged[-1]), logged[-1]
    assert read < len(logged) - 1


def test_progress_says_how_much_is_done_and_what_is_left_for_a_file_input(
    emulator, base_config, tmp_path
):
    """Input from a file (`--input`, or stdin redirected from one): its size is known, so
    progress says the share of its rows settled and the time left."""
    emulator.latency = 0.05
    config = {**base_config, "streams": {STREAM: SPEC}, "max_concurrency": 2}
    (tmp_path / "config.json").write_text(json.dumps(config))
    source = tmp_path / "input.singer.jsonl"
    source.write_text(lines_to_text(rows(120)))
    with source.open() as stdin:
        result = subprocess.run(
            [*FAST_PROGRESS_CMD, "--config", str(tmp_path / "config.json")],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    shares = [
        int(m.group(1))
        for m in re.finditer(
            r"Progress of the run: (\d+)% of the input's rows settled", result.stderr
        )
    ]
    assert shares, result.stderr
    assert any(0 < s < 100 for s in shares)
    assert shares == sorted(shares)  # it only goes forward
    assert re.search(r"rows settled, about .+ left", result.stderr)
    piped = subprocess.run(  # a pipe has no size: no share until the input ends
        [*FAST_PROGRESS_CMD, "--config", str(tmp_path / "config.json")],
        input=lines_to_text(rows(3)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
