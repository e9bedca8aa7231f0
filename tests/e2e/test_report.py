"""`target-pendo report [RUN_ID] [--html FILE]`: a run's report read back from the ledger, as a
table and as one self-contained HTML page, rendered here in headless Chromium."""

from __future__ import annotations

import datetime as dt
import html
import itertools
import json
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from pendo_emulator import DEMO_TRACK_SECRET
from target_pendo.ledger import Ledger, RowOutcome, default_url
from target_pendo.observe.report import reason_pattern
from target_pendo.observe.report_document import REPORT_VERSION, read_report
from target_pendo.observe.report_html import render_html

from ..singer import TARGET_CMD, record, run_target, schema, state
from ..unit.observe.test_report_document import LEDGER_FIRST
from ..unit.observe.test_report_html import sample_view

STREAM = "events"
SPEC = {"event_name": "Report Test", "visitor_id_column": "user_id"}
BLUE_2XX = (0x44, 0x77, 0xAA)  # report_html's colour for 2xx answers
P50, P90, P99 = (0x22, 0x88, 0x33), (0xCC, 0xBB, 0x44), (0xCC, 0x33, 0x11)  # its latency lines


def events_config(base: dict, **extra: object) -> dict:
    return {**base, "streams": {STREAM: SPEC}, **extra}


def sync_with_trouble(emulator, base_config) -> tuple[dict, str]:
    """30 rows: 2 without a visitor, 1 with a bad timestamp value; one 429 and one 503."""
    emulator.inject(route="track", status=429, retry_after="0", times=1)
    emulator.inject(route="track", status=503, times=1, after=5)
    config = events_config(
        base_config,
        streams={STREAM: {**SPEC, "timestamp_column": "occurred_at"}},
    )
    lines = [schema(STREAM)]
    # within Pendo's 7 days whenever the test runs (an older event adds a column to the table)
    recent = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for i in range(30):
        row = {"id": i, "user_id": None if i in (3, 4) else f"u-{i}"}
        row["occurred_at"] = "yesterday-ish" if i == 9 else recent
        lines.append(record(STREAM, row))
    lines.append(state({"n": 30}))
    _, target = run_target(config, lines)
    return config, target.run_context.run_id


def report_cli(config: dict, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "report-config.json"
    path.write_text(json.dumps(config))
    return subprocess.run(
        [*TARGET_CMD, "report", *args, "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_report_prints_the_last_run_as_a_table(emulator, base_config, tmp_path):
    config, run_id = sync_with_trouble(emulator, base_config)
    result = report_cli(config, tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"Run {run_id}: succeeded\n")
    (row,) = [x for x in out.splitlines() if x.startswith(f"{STREAM} ")]
    assert row.split() == [STREAM, "events", "30", "27", "3", "29", "2", row.split()[-1]]
    assert "answered 429: 1, 5xx: 1" in out
    assert "retries: 2" in out
    assert f"  {STREAM}: HTTP 429: 1" in out
    assert f"  {STREAM}: HTTP 503: 1" in out
    (missing,) = [x for x in out.splitlines() if "'user_id' is missing or null" in x]
    assert missing.split()[:2] == [STREAM, "2"]
    (bad_time,) = [x for x in out.splitlines() if "timestamp column 'occurred_at'" in x]
    assert "yesterday-ish" not in bad_time  # the value is masked in the grouped reason
    assert result.stderr == ""


def test_report_by_run_id_prefix_and_an_unknown_id(emulator, base_config, tmp_path):
    config, first = sync_with_trouble(emulator, base_config)
    emulator.reset()
    _, again = run_target(config, [schema(STREAM), record(STREAM, {"id": 99, "user_id": "u"})])
    second = again.run_context.run_id
    by_prefix = report_cli(config, tmp_path, first[:-3])
    assert by_prefix.returncode == 0, by_prefix.stderr
    assert by_prefix.stdout.startswith(f"Run {first}: ")
    latest = report_cli(config, tmp_path)
    assert latest.stdout.startswith(f"Run {second}: ")
    listed = report_cli(config, tmp_path, "--list")
    assert [x.split()[0] for x in listed.stdout.splitlines()[2:]] == [second, first]
    unknown = report_cli(config, tmp_path, "nope-42")
    assert unknown.returncode == 1
    (line,) = unknown.stderr.strip().splitlines()
    assert line.startswith("target-pendo: error: no run 'nope-42' in the ledger at ")


def test_a_run_that_never_finished_shows_its_rows_from_sync_rows(base_config, tmp_path):
    state_dir = base_config["state_dir"]
    ledger = Ledger(default_url(state_dir))
    ledger.start_run("20261201T000000000-killed", False)
    ledger.record(
        STREAM,
        "20261201T000000000-killed",
        [RowOutcome("1", "sent"), RowOutcome("2", "sent"), RowOutcome("3", "rejected", "bad")],
    )
    ledger.close()  # no finish_run: as if the process was killed
    result = report_cli({"state_dir": state_dir}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Run 20261201T000000000-killed: running" in result.stdout
    assert "no run report: the run did not finish" in result.stdout
    (row,) = [x for x in result.stdout.splitlines() if x.startswith(f"{STREAM} ")]
    assert row.split() == [STREAM, "?", "2", "1"]


def test_a_report_written_by_an_earlier_version_renders(base_config, tmp_path):
    """The first report a ledger kept had no version, no HTTP counts per stream, no timeline:
    it shows as a table and a page, what it lacks as 0."""
    state_dir = base_config["state_dir"]
    run_id = LEDGER_FIRST["run_id"]
    ledger = Ledger(default_url(state_dir))
    ledger.start_run(run_id, False)
    ledger.finish_run(run_id, "failed", LEDGER_FIRST)
    ledger.close()
    page = tmp_path / "old.html"
    result = report_cli({"state_dir": state_dir}, tmp_path, run_id[:-2], "--html", str(page))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Run {run_id}: failed\n")
    assert "  error: Pendo answered HTTP 503 for 'events'" in result.stdout
    (row,) = [x for x in result.stdout.splitlines() if x.startswith(f"{STREAM} ")]
    assert row.split() == [STREAM, "events", "12", "9", "1", "2", "0", "0", "0.0"]
    html_page = page.read_text()
    assert f"<code>{run_id}</code>" in html_page
    assert f'data-k="{STREAM}:received">12<' in html_page
    assert f'data-k="{STREAM}:already_sent">2<' in html_page
    assert "No HTTP call was recorded." in html_page


def test_a_runs_report_reads_back_as_one_document_from_its_file_and_the_ledger(
    emulator, base_config
):
    config, run_id = sync_with_trouble(emulator, base_config)
    state_dir = Path(config["state_dir"])
    from_file = read_report((state_dir / "reports" / f"run-{run_id}.json").read_text())
    ledger = Ledger(default_url(config["state_dir"]))
    (row,) = ledger.runs(prefix=run_id)
    ledger.close()
    assert from_file is not None
    assert read_report(row.report) == from_file
    assert from_file.report_version == REPORT_VERSION
    assert from_file.streams[STREAM].received == 30
    assert sum(r.count for r in from_file.reject_reasons[STREAM]) == 3
    assert sum(r.calls for r in from_file.timeline.rows) >= 29
    assert read_report(json.dumps(from_file.as_dict())) == from_file


def test_report_output_never_shows_a_key(emulator, base_config, tmp_path):
    config, run_id = sync_with_trouble(emulator, base_config)
    ledger = Ledger(default_url(config["state_dir"]))
    ledger.record(  # a reason holding the key, as if written by a careless older version
        STREAM, run_id, [RowOutcome("x", "rejected", f"value 'k-{DEMO_TRACK_SECRET}' refused")]
    )
    ledger.close()
    html_path = tmp_path / "page.html"
    result = report_cli(config, tmp_path, run_id, "--html", str(html_path))
    assert result.returncode == 0, result.stderr
    page = html_path.read_text()
    assert DEMO_TRACK_SECRET not in result.stdout + page
    assert "***" in page  # the example reason, redacted


def test_reason_patterns_group_rows_of_one_cause():
    assert reason_pattern("column 'n' is a str, not an integer: got 'twelve'") == (
        "column 'n' is a str, not an integer: got 'twelve'"
    )  # a plain word stays (it may be a column's name)
    assert reason_pattern("timestamp column 'at': '31/02/2026' is not a date") == reason_pattern(
        "timestamp column 'at': '2026-13-01' is not a date"
    )
    long_text = reason_pattern("'plan' is 1600 characters")
    assert long_text == reason_pattern("'plan' is 2048 characters")
    assert "HTTP 400" in reason_pattern("Pendo refused the event (HTTP 400): u-3 blocked")


# --- the HTML page in a real browser ------------------------------------------------------------
def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium is not installed (.ci/run installs Debian's 'chromium' package)")
    raise AssertionError  # unreachable: for type checkers


def run_chromium(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def png_rows(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, bytes per pixel, rows of pixels) of an 8-bit, non-interlaced PNG: the chunks
    read, IDAT inflated with zlib, each row's filter undone (PNG spec, section 9)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, []
    width = height = bpp = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8
            assert interlace == 0
            bpp = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
        elif kind == b"IDAT":
            idat.append(body)
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    at = 0
    for _ in range(height):
        kind, line = raw[at], bytearray(raw[at + 1 : at + 1 + stride])
        at += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, bpp, rows


def test_html_page_renders_in_chromium_with_the_runs_numbers(emulator, base_config, tmp_path):
    config, run_id = sync_with_trouble(emulator, base_config)
    page = tmp_path / "run.html"
    result = report_cli(config, tmp_path, "--html", str(page))
    assert result.returncode == 0, result.stderr
    text = page.read_text()
    # self-contained: nothing to fetch
    for outside in ("<script", "<link", "src=", "@import", "url(", "https://"):
        assert outside not in text
    shot = tmp_path / "run.png"
    shown = run_chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,900")
    assert shot.exists(), shown.stderr[-2000:]
    width, bpp, rows = png_rows(shot.read_bytes())
    assert width == 1200
    assert len(rows) == 900
    pixels = [row[x : x + 3] for row in rows[::3] for x in range(0, len(row), bpp * 3)]
    colours = set(pixels)
    not_white = sum(1 for p in pixels if p != b"\xff\xff\xff")
    assert len(colours) > 20, "the screenshot is blank"
    assert not_white > len(pixels) // 50
    assert sum(1 for p in pixels if tuple(p) == BLUE_2XX) > 100  # the calls chart's bars
    dom = run_chromium(page, tmp_path, "--dump-dom").stdout
    assert f"<code>{run_id}</code>" in dom
    for key, value in (("received", "30"), ("sent", "27"), ("rejected", "3"), ("throttled", "1")):
        assert f'data-k="{key}">{value}<' in dom
    assert f'data-k="{STREAM}:received">30<' in dom
    assert 'id="calls-chart"' in dom
    assert 'id="latency-chart"' in dom
    assert dom.count("'user_id' is missing or null") == 1  # the reason, not again as example
    assert 'data-k="reject-count">2<' in dom
    assert "<code>'yesterday-ish'</code>" in dom  # what the pattern masked, on its own
    assert card_rows(page_layout(page, tmp_path, 1280)) == [5, 5]


# Appended to a copy of the page (the page itself has no script): the boxes Chromium laid out,
# written into the page as JSON for --dump-dom to hand back.
LAYOUT_PROBE = """<script>(() => {
  const box = (e) => { const r = e.getBoundingClientRect(); return {x: r.left, y: r.top +
    scrollY, w: r.width, h: r.height, text: e.textContent, clipped: e.scrollWidth >
    e.clientWidth}; };
  const all = (css) => [...document.querySelectorAll(css)].map(box);
  const out = document.createElement("pre");
  out.id = "layout";
  out.textContent = JSON.stringify({viewport: innerWidth, cards: all(".card"),
    section: all(".cards")[0], latency: all("#latency-chart")[0],
    ticks: all("#latency-chart text.y-tick"), note: all('[data-k="latency-overlap"]')});
  document.body.append(out);
})();</script>"""


def page_layout(page: Path, tmp_path: Path, width: int) -> dict:
    probe = tmp_path / f"layout-{width}.html"
    probe.write_text(page.read_text().replace("</body>", LAYOUT_PROBE + "</body>"))
    shown = run_chromium(
        probe, tmp_path, "--dump-dom", "--hide-scrollbars", f"--window-size={width},900"
    )
    found = re.search(r'<pre id="layout">(.*?)</pre>', shown.stdout, re.S)
    assert found, shown.stderr[-2000:]
    layout = json.loads(html.unescape(found.group(1)))
    assert layout["viewport"] == width
    return layout


def card_rows(layout: dict) -> list[int]:
    """How many stat cards sit on each line, top to bottom (each card inside the grid, its
    number and label not cut)."""
    section = layout["section"]
    for card in layout["cards"]:
        assert not card["clipped"], card
        assert section["x"] - 0.5 <= card["x"]
        assert card["x"] + card["w"] <= section["x"] + section["w"] + 0.5
    tops = Counter(round(card["y"]) for card in layout["cards"])
    return [tops[top] for top in sorted(tops)]


def latency_ms(label: str) -> float:
    number, unit = label.split(" ")
    return float(number) * {"ms": 1, "s": 1000}[unit]


def test_html_page_layout_at_1280_px_in_chromium(tmp_path):
    """Stat cards in even rows, a readable latency axis, equal p90 and p99 lines both seen
    and noted: a run built in tests/unit/observe/test_report_html.py, laid out by Chromium."""
    page = tmp_path / "sample.html"
    page.write_text(render_html(sample_view()))  # 40 buckets, p90 = p99 in each
    layout = page_layout(page, tmp_path, 1280)
    assert len(layout["cards"]) == 10
    assert card_rows(layout) == [5, 5]  # not 8 + 2: no card alone on its line
    widths = {round(card["w"]) for card in layout["cards"]}
    assert len(widths) == 1  # one column width
    assert card_rows(page_layout(page, tmp_path, 800)) == [5, 5]
    assert card_rows(page_layout(page, tmp_path, 520)) == [2, 2, 2, 2, 2]  # narrow, as a phone

    ticks = sorted(layout["ticks"], key=lambda t: t["y"])
    labels = [t["text"] for t in ticks]
    assert labels == ["1 s", "500 ms", "200 ms", "100 ms", "50 ms"]  # 1-2-5, with units
    values = [latency_ms(label) for label in labels]
    assert values == sorted(values, reverse=True)
    for upper, lower in itertools.pairwise(ticks):
        assert upper["y"] + upper["h"] + 4 <= lower["y"]  # apart, not overlapping
    (note,) = layout["note"]
    assert note["text"].startswith("p90 = p99 throughout")
    chart = layout["latency"]
    assert note["h"] > 0
    assert note["y"] > chart["y"] + chart["h"]  # in the legend under the chart

    shot = tmp_path / "sample.png"
    bottom = int(chart["y"] + chart["h"]) + 4
    shown = run_chromium(
        page, tmp_path, f"--screenshot={shot}", "--hide-scrollbars", f"--window-size=1280,{bottom}"
    )
    assert shot.exists(), shown.stderr[-2000:]
    width, bpp, rows = png_rows(shot.read_bytes())
    assert width == 1280
    left, right = int(chart["x"]), int(chart["x"] + chart["w"])
    seen = Counter(
        tuple(row[x : x + 3])
        for row in rows[int(chart["y"]) : bottom]
        for x in range(left * bpp, right * bpp, bpp)
    )
    # the p90 line runs inside the p99 line: both colours show over the 40 buckets' width
    assert seen[P90] > 1500, seen.most_common(8)
    assert seen[P99] > 800, seen.most_common(8)
    assert seen[P50] > 100, seen.most_common(8)


def test_rejects_only_the_report_counted_are_added_once():
    from target_pendo.observe.report_text import group_rejects

    sql = [(STREAM, "'user_id' is missing or null", 2), (STREAM, "value 12 is bad", 1)]
    report = {
        "reject_reasons": {
            STREAM: [
                {"pattern": "'user_id' is missing or null", "count": 3, "example": "a"},
                {"pattern": "value N is bad", "count": 1, "example": "b"},  # another version
            ]
        }
    }
    groups = group_rejects(sql, report)
    assert [(g.pattern, g.count, g.keyless) for g in groups] == [
        ("'user_id' is missing or null", 2, False),
        ("'user_id' is missing or null", 1, True),  # a row without a key: not in sync_rows
        ("value … is bad", 1, False),
    ]
