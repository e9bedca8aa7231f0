"""report_html.py: the run report page's latency axis and lines, stat cards and reject table,
on a run view built here (the page in Chromium: tests/e2e/test_report.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from target_pendo.observe.report import MAX_EXAMPLE_CHARS, reason_pattern
from target_pendo.observe.report_html import (
    latency_label,
    latency_overlap,
    log_ticks,
    masked_values,
    render_html,
)
from target_pendo.observe.report_text import RejectGroup, RunView
from target_pendo.observe.timeline import TimelineRow, latency_slot

MISSING = "'user_id' is missing or null"
BAD_DATE = "timestamp column 'occurred_at': 'yesterday-ish' is not an ISO 8601 date-time"
TOO_LONG = "'plan' is 1600 characters"


def bucket(t: int, latency: dict[int, int], retries: int = 0) -> list[Any]:
    calls = sum(latency.values())
    return [t, calls, calls - 2, 0, 1, 1, 0, retries, sorted([s, n] for s, n in latency.items())]


def sample_view(rows: list[list[Any]] | None = None, rejects: list[str] | None = None) -> RunView:
    """A finished run with 40 one-second buckets whose p90 and p99 are equal (half the calls
    near 80 ms, half near 720 ms), and rejected rows of three reasons."""
    if rows is None:
        rows = [bucket(t, {20 + t % 4: 10, 30: 10}, retries=t % 7 == 3) for t in range(40)]
    reasons = [MISSING, MISSING, BAD_DATE, TOO_LONG] if rejects is None else rejects
    groups: dict[str, RejectGroup] = {}
    for reason in reasons:
        key = reason_pattern(reason)
        old = groups.get(key)
        groups[key] = RejectGroup(
            "events", key, (old.count if old else 0) + 1, old.example if old else reason
        )
    counts = {
        "sync": "events",
        "received": 1_234_567,
        "sent": 1_234_563,
        "rejected": len(reasons),
        "http_calls": 800,
        "retries": 6,
        "seconds": 40.2,
    }
    report = {
        "streams": {"events": counts},
        "timeline": {"bucket_seconds": 1, "rows": rows},
        "retries_by_cause": {"events: HTTP 429": 6},
    }
    return RunView(
        run_id="20261207T000000000-sample",
        status="succeeded",
        started_at="2026-12-07T00:00:00+00:00",
        finished_at="2026-12-07T00:00:41+00:00",
        report=report,
        ledger="/tmp/ledger.sqlite3",
        rejects=sorted(groups.values(), key=lambda g: -g.count),
    )


def timeline_rows(view: RunView) -> list[TimelineRow]:
    return view.timeline()[1]


def section(page: str, start: str, end: str) -> str:
    return page[page.index(start) : page.index(end, page.index(start))]


# --- latency axis --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("low", "high", "labels"),
    [
        (77.6, 722.0, ["50 ms", "100 ms", "200 ms", "500 ms", "1 s"]),
        (2.2, 9.3, ["2 ms", "5 ms", "10 ms"]),
        (8.0, 10.0, ["2 ms", "5 ms", "10 ms"]),  # widened to three ticks
        (1.0, 1.0, ["1 ms", "2 ms", "5 ms"]),  # not below 1 ms, the histogram's first slot
        (
            1.5,
            250.0,
            ["1 ms", "2 ms", "5 ms", "10 ms", "20 ms", "50 ms", "100 ms", "200 ms", "500 ms"],
        ),
        (3000.0, 48000.0, ["2 s", "5 s", "10 s", "20 s", "50 s"]),
    ],
)
def test_latency_axis_ticks_step_1_2_5_with_units(low, high, labels):
    ticks = log_ticks(low, high)
    assert [latency_label(v) for v, labelled in ticks if labelled] == labels
    assert ticks[0][0] <= low
    assert ticks[-1][0] >= high


def test_a_latency_range_of_many_decades_labels_the_powers_of_ten():
    ticks = log_ticks(1.0, 600_000.0)  # 1 ms to 10 minutes: 19 1-2-5 values, to 1000 s
    assert [latency_label(v) for v, labelled in ticks if labelled] == [
        "1 ms",
        "10 ms",
        "100 ms",
        "1 s",
        "10 s",
        "100 s",
        "1000 s",
    ]
    assert len(ticks) == 19  # the 2s and 5s stay as faint grid lines
    assert [v for v, _ in log_ticks(1.0, 5e7)] == [10.0**k for k in range(8)]  # past 20: not


def test_the_latency_chart_is_labelled_in_1_2_5_steps_between_its_values():
    page = render_html(sample_view())
    chart = section(page, 'id="latency-chart"', "</svg>")
    labels = re.findall(r'<text class="y-tick"[^>]*>([^<]*)</text>', chart)
    assert labels == ["50 ms", "100 ms", "200 ms", "500 ms", "1 s"]
    assert "log scale" in page


# --- latency lines that overlap ----------------------------------------------------------------
def test_equal_p90_and_p99_are_drawn_nested_and_noted_in_the_legend():
    view = sample_view()
    page = render_html(view)
    chart = section(page, 'id="latency-chart"', "</svg>")
    drawn = re.findall(r'stroke-width="([\d.]+)" data-q="(p\d\d)"', chart)
    order = [q for _, q in drawn]
    widths = {q: float(w) for w, q in drawn}
    # widest first: the p90 line runs inside the p99 line, the p50 line inside both
    assert order.index("p99") < order.index("p90") < order.index("p50")
    assert widths["p99"] > widths["p90"] + 2 > widths["p50"] + 2
    note = latency_overlap(timeline_rows(view))
    assert note is not None
    assert note.startswith("p90 = p99 throughout: ")
    assert f'data-k="latency-overlap">{note}<' in page


def test_the_overlap_note_counts_the_buckets_where_lines_meet():
    apart = {10: 10, 20: 8, 30: 2}  # p50 ~8 ms, p90 ~66 ms, p99 ~617 ms
    same = {10: 10, 30: 10}  # p90 = p99
    all_three = {25: 3}  # one latency: p50 = p90 = p99
    rows = [bucket(0, apart), bucket(1, same), bucket(2, apart), bucket(3, same)]
    assert latency_overlap(timeline_rows(sample_view(rows))) == (
        "p90 = p99 in 2 of 4 buckets: the equal lines are drawn one inside the other "
        "(p99 widest, p50 thinnest), so each stays visible"
    )
    rows = [bucket(0, apart), bucket(1, all_three)]
    note = latency_overlap(timeline_rows(sample_view(rows)))
    assert note is not None
    assert note.startswith("p50 = p90 in 1 of 2 buckets; p90 = p99 in 1 of 2 buckets: ")
    note = latency_overlap(timeline_rows(sample_view([bucket(0, all_three)])))
    assert note is not None
    assert note.startswith("p50 = p90 = p99 throughout: ")
    assert latency_overlap(timeline_rows(sample_view([bucket(0, apart)]))) is None
    assert 'data-k="latency-overlap"' not in render_html(sample_view([bucket(0, apart)]))


def test_a_lone_latency_point_spans_its_bucket():
    page = render_html(sample_view([bucket(0, {latency_slot(40): 5})]))
    chart = section(page, 'id="latency-chart"', "</svg>")
    (dash,) = {float(w) for w in re.findall(r'd="M[\d.]+,[\d.]+h([\d.]+)"', chart)}
    assert dash > 500  # one bucket of one second: most of the chart's 1020 px, not a 6 px dash


# --- stat cards ------------------------------------------------------------------------------
def test_the_ten_stat_cards_are_laid_out_five_a_row():
    page = render_html(sample_view())
    assert page.count('<div class="card">') == 10
    assert '<section class="cards" style="--cols:5">' in page
    assert "grid-template-columns:repeat(var(--cols,5),minmax(0,1fr))" in page
    assert 'data-k="received">1,234,567<' in page


# --- reject reasons ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reason", "values"),
    [
        (MISSING, []),
        (BAD_DATE, ["'yesterday-ish'"]),
        (TOO_LONG, ["1600"]),
        ("column 'n' is a str: got \"x 'y'\" and -3.5, at 12:30", ["\"x 'y'\"", "-3.5", "12:30"]),
        ("Pendo refused the event (HTTP 400): u-3 blocked", ["3"]),
        ("value 'it\\'s' is   bad\n", ["'it\\'s'"]),  # whitespace as reason_pattern reads it
    ],
)
def test_masked_values_are_what_the_pattern_hides(reason, values):
    pattern = reason_pattern(reason)
    assert masked_values(pattern, reason) == values
    rebuilt = pattern
    for value in values:  # put back in order, the values give the reason again
        mask = "'…'" if value[0] in "'\"" else "…"
        rebuilt = rebuilt.replace(mask, value, 1)
    assert rebuilt == " ".join(reason.split())


def test_masked_values_of_a_long_reason_and_of_another_pattern():
    value = "'" + "x-" * 20 + "'"
    long_reason = f"value {value} " + "and more words " * 20
    pattern = reason_pattern(long_reason)
    assert pattern.endswith("…")
    assert len(pattern) == 200  # cut short: the values before the cut are still found
    assert masked_values(pattern, long_reason[:MAX_EXAMPLE_CHARS]) == [value]
    assert masked_values("(other reasons)", BAD_DATE) is None
    assert masked_values(reason_pattern(BAD_DATE), TOO_LONG) is None
    hostile = "'a' " * 2000 + "!"  # no backtracking: a reason that nearly matches is quick
    assert masked_values("'…' " * 2000 + "?", hostile) is None


def test_the_reject_table_shows_the_masked_values_not_the_reason_again():
    page = render_html(sample_view())
    table = section(page, '<table id="rejects">', "</table>")
    assert "<th>masked values (first row)</th>" in table
    assert table.count("&#x27;user_id&#x27; is missing or null") == 1  # the reason, once
    assert "<code>&#x27;yesterday-ish&#x27;</code>" in table
    assert "<code>1600</code>" in table
    assert "yesterday-ish&#x27; is not" not in table  # not the whole reason again
    assert "<th>example</th>" not in page


def test_the_reject_table_has_no_values_column_when_nothing_is_masked():
    page = render_html(sample_view(rejects=[MISSING, "'plan' is missing or null"]))
    table = section(page, '<table id="rejects">', "</table>")
    assert "masked values" not in table
    assert "<code>" not in table
    assert table.count("<td") == 3 * 2


def test_a_reason_of_another_pattern_is_shown_whole():
    view = sample_view(rejects=[MISSING])
    view.rejects.append(RejectGroup("events", "(other reasons)", 4, BAD_DATE, keyless=True))
    table = section(render_html(view), '<table id="rejects">', "</table>")
    assert '<span class="muted">first row:</span> <code>timestamp column' in table
    assert "(no ledger key)" in table


def test_the_page_stays_self_contained():
    page = render_html(sample_view())
    for outside in ("<script", "<link", "src=", "@import", "url(", "https://"):
        assert outside not in page
