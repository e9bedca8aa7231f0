"""`target-pendo report --html FILE`: one run as one self-contained HTML page. Everything is
inline (CSS, SVG, no script or font), so the page opens offline. Every text from the ledger is
HTML-escaped; the caller redacts the whole page.
"""

from __future__ import annotations

import datetime as dt
import html
import itertools
import math
import re
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from target_pendo.observe.report import MASK, MAX_PATTERN_CHARS
from target_pendo.observe.report_text import (
    MAX_REJECT_GROUPS,
    RunView,
    duration,
    http_summary,
    stream_columns,
)
from target_pendo.observe.timeline import TimelineRow, percentile

WIDTH, HEIGHT = 1100, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 14, 34
SERIES = (  # timeline column, label, colour (colour-blind safe palette)
    ("ok", "2xx", "#4477aa"),
    ("refused", "other 4xx", "#ee7733"),
    ("throttled", "429", "#aa3377"),
    ("failed", "5xx", "#cc3311"),
    ("unanswered", "no answer", "#888888"),
)
# percentile, label, colour, line width: drawn widest first, so equal lines both stay visible
PERCENTILES = (
    (50, "p50", "#228833", 1.6),
    (90, "p90", "#ccbb44", 4.0),
    (99, "p99", "#cc3311", 7.5),
)
MAX_LOG_LABELS = 10  # more 1-2-5 ticks on the latency axis: only 1, 10, 100... labelled
STATUS_COLOURS = {"succeeded": "#228833", "failed": "#cc3311", "stopped": "#ccbb44"}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return _e(value if value is not None else "-")


def _nice_step(span: float, count: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about `count` ticks."""
    if span <= 0:
        return 1.0
    raw = span / count
    power: float = 10.0 ** math.floor(math.log10(raw))
    return next((f * power for f in (1, 2, 5) if raw <= f * power), 10 * power)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}"


def _one_two_five(low: float, high: float) -> list[float]:
    """The 1-2-5 values from the last one at or below `low` to the first one at or above `high`."""
    low = max(low, 1.0)
    high = max(high, low)
    values: list[float] = []
    power = math.floor(math.log10(low))
    while not values or values[-1] < high:
        values += [float(m * 10**power) for m in (1, 2, 5)]
        power += 1
    values.append(float(10**power))
    first = max(i for i, v in enumerate(values) if v <= low)
    last = min(i for i, v in enumerate(values) if v >= high)
    return values[first : last + 1]


def log_ticks(low: float, high: float) -> list[tuple[float, bool]]:
    """(value, labelled) 1-2-5 ticks of a log axis, at least three; past MAX_LOG_LABELS only
    powers of ten are labelled (and past twice as many, the only ticks)."""
    values = _one_two_five(low, high)
    while len(values) < 3:
        if values[0] > 1:
            values = _one_two_five(values[0] * 0.99, values[-1])
        else:
            values = _one_two_five(values[0], values[-1] * 1.01)
    if len(values) <= MAX_LOG_LABELS:
        return [(v, True) for v in values]
    ticks = [(v, math.log10(v) == round(math.log10(v))) for v in values]
    return ticks if len(ticks) <= 2 * MAX_LOG_LABELS else [t for t in ticks if t[1]]


def latency_label(ms: float) -> str:
    return f"{ms / 1000:g} s" if ms >= 1000 else f"{ms:g} ms"


class _Plot:
    """Scales and axes of one chart of time buckets: linear from 0, or log over `log_range`."""

    def __init__(
        self,
        rows: list[TimelineRow],
        bucket: int,
        y_max: float,
        *,
        log_range: tuple[float, float] | None = None,
    ) -> None:
        self.bucket = bucket
        self.span = max((max(r.t for r in rows) + bucket) if rows else bucket, 1.0)
        self.log = log_range is not None
        self.ticks: list[tuple[float, bool]]
        if log_range is not None:
            self.ticks = log_ticks(*log_range)
            self.y_min, self.y_max = self.ticks[0][0], self.ticks[-1][0]
        else:
            step = _nice_step(max(y_max, 1.0))
            self.y_min = 0.0
            self.y_max = step * math.ceil(max(y_max, 1.0) / step)
            step = _nice_step(self.y_max)
            self.ticks = [(i * step, True) for i in range(round(self.y_max / step) + 1)]
        self.width = WIDTH - LEFT - RIGHT
        self.height = HEIGHT - TOP - BOTTOM

    def x(self, t: float) -> float:
        return LEFT + t / self.span * self.width

    def point(self, t: float, value: float) -> str:
        return f"{self.x(t + self.bucket / 2):.1f},{self.y(value):.1f}"

    def y(self, value: float) -> float:
        if self.log:
            low, high = math.log10(self.y_min), math.log10(self.y_max)
            frac = (math.log10(max(value, self.y_min)) - low) / (high - low)
        else:
            frac = value / self.y_max if self.y_max else 0.0
        return TOP + self.height * (1 - min(max(frac, 0.0), 1.0))

    def axes(self, y_label: Callable[[float], str]) -> list[str]:
        parts = []
        for tick, labelled in self.ticks:
            y = self.y(tick)
            parts.append(
                f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="{"#e6e6e6" if labelled else "#f3f3f3"}"/>'
            )
            if labelled:
                parts.append(
                    f'<text class="y-tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                    f"{_e(y_label(tick))}</text>"
                )
        steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)
        step = next((s for s in steps if self.span / s <= 10), 28800)
        for t in range(0, int(self.span + 1e-9) + 1, step):
            x = self.x(t)
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + self.height}" '
                f'y2="{TOP + self.height + 4}" stroke="#999"/>'
                f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">'
                f"{_clock(t)}</text>"
            )
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + self.height}" '
            f'y2="{TOP + self.height}" stroke="#999"/>'
        )
        return parts


def _svg(title: str, parts: Sequence[str], ident: str) -> str:
    return (
        f'<svg id="{ident}" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{_e(title)}</title>{''.join(parts)}</svg>"
    )


def _segments(points: list[tuple[float, float | None]], plot: _Plot, dash: float) -> list[str]:
    """Paths through (t, value) points, broken at a bucket without one (a lone point: a dash)."""
    runs: list[list[str]] = []
    last_t: float | None = None
    for t, value in points:
        if value is None:
            last_t = None
            continue
        if last_t is None or t - last_t > plot.bucket * 1.5:
            runs.append([])
        runs[-1].append(plot.point(t, value))
        last_t = t
    paths = []
    for run in runs:
        x, y = run[0].split(",")
        paths.append(
            f"M{float(x) - dash / 2:.1f},{y}h{dash:.1f}" if len(run) == 1 else "M" + "L".join(run)
        )
    return paths


def calls_chart(rows: list[TimelineRow], bucket: int) -> str:
    """Calls per second, stacked by what Pendo answered; retries per second as a line."""
    peak = max((r.calls / bucket for r in rows), default=1.0)
    plot = _Plot(rows, bucket, max(peak, max((r.retries / bucket for r in rows), default=0.0)))
    bar = max(plot.width * bucket / plot.span - 0.6, 0.6)
    parts = plot.axes(lambda v: f"{v:g}/s")
    below = [0] * len(rows)  # each bucket's calls in the series drawn so far
    for name, label, colour in SERIES:
        shapes = []
        for i, r in enumerate(rows):
            if value := getattr(r, name):
                top, bottom = plot.y((below[i] + value) / bucket), plot.y(below[i] / bucket)
                shapes.append(f"M{plot.x(r.t):.1f},{top:.1f}h{bar:.1f}V{bottom:.1f}h{-bar:.1f}z")
                below[i] += value
        if shapes:
            parts.append(
                f'<path d="{"".join(shapes)}" fill="{colour}"><title>{label}</title></path>'
            )
    retry_points = [(float(r.t), r.retries / bucket if r.retries else None) for r in rows]
    for path in _segments(retry_points, plot, max(bar, 6.0)):
        parts.append(
            f'<path d="{path}" fill="none" stroke="#222" stroke-width="1.5" '
            'stroke-dasharray="4 2"><title>retries</title></path>'
        )
    for r in rows:  # a tooltip per bucket: hover shows its numbers
        detail = ", ".join(f"{label} {getattr(r, n)}" for n, label, _ in SERIES if getattr(r, n))
        p50 = percentile(r.latency, 50)
        tip = f"{_clock(r.t)}: {r.calls} calls ({detail}); {r.retries} retries" + (
            f"; p50 {p50:.0f} ms" if p50 is not None else ""
        )
        parts.append(
            f'<rect x="{plot.x(r.t):.1f}" y="{TOP}" width="{max(bar, 1):.1f}" '
            f'height="{plot.height}" fill="transparent"><title>{_e(tip)}</title></rect>'
        )
    return _svg("HTTP calls per second by answer, retries per second", parts, "calls-chart")


def latency_values(rows: list[TimelineRow]) -> dict[int, list[tuple[float, float | None]]]:
    return {q: [(float(r.t), percentile(r.latency, q)) for r in rows] for q, *_ in PERCENTILES}


def latency_chart(rows: list[TimelineRow], bucket: int) -> str:
    """Latency p50 / p90 / p99 per time bucket, log scale; p99 widest and drawn first."""
    values = latency_values(rows)
    shown = [v for series in values.values() for _, v in series if v is not None]
    plot = _Plot(rows, bucket, 0, log_range=(min(shown, default=1.0), max(shown, default=10.0)))
    parts = plot.axes(latency_label)
    dash = max(plot.width * bucket / plot.span * 0.8, 6.0)
    for q, label, colour, width in reversed(PERCENTILES):
        for path in _segments(values[q], plot, dash):
            parts.append(
                f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="{width}" '
                f'data-q="{label}" stroke-linejoin="round"><title>{label}</title></path>'
            )
    return _svg("Latency per time bucket: p50, p90, p99", parts, "latency-chart")


def latency_overlap(rows: list[TimelineRow]) -> str | None:
    """The legend's note when percentiles share a line ("p50 = p90 in 3 of 40 buckets")."""
    values = latency_values(rows)
    pairs = []
    for (low, low_label, *_), (high, high_label, *_) in itertools.pairwise(PERCENTILES):
        both = [
            a == b
            for (_, a), (_, b) in zip(values[low], values[high], strict=True)
            if a is not None and b is not None
        ]
        pairs.append((low_label, high_label, sum(both), len(both)))
    if all(same == total > 0 for _, _, same, total in pairs):
        equal = [" = ".join(label for _, label, *_ in PERCENTILES) + " throughout"]
    else:
        equal = [
            f"{a} = {b} " + ("throughout" if same == total else f"in {same} of {total} buckets")
            for a, b, same, total in pairs
            if same
        ]
    if not equal:
        return None
    return (
        "; ".join(equal) + ": the equal lines are drawn one inside the other (p99 widest, "
        "p50 thinnest), so each stays visible"
    )


def _legend(
    items: Sequence[tuple[str, str]],
    dashed: str | None = None,
    widths: Sequence[float] = (),
    note: str | None = None,
) -> str:
    spans = []
    for i, (label, colour) in enumerate(items):
        swatch = f'style="background:{colour}"'
        if i < len(widths):
            swatch = f'class="line" style="background:{colour};height:{widths[i]:g}px"'
        spans.append(f"<span><i {swatch}></i>{_e(label)}</span>")
    if dashed:
        spans.append(
            '<span><i style="background:repeating-linear-gradient(90deg,#222 0 4px,'
            f'transparent 4px 6px);height:2px;vertical-align:3px"></i>{_e(dashed)}</span>'
        )
    if note:
        spans.append(f'<span class="note" data-k="latency-overlap">{_e(note)}</span>')
    return f'<div class="legend">{"".join(spans)}</div>'


_MASK_TOKEN = re.compile(f"'{MASK}'|{MASK}")
# what reason_pattern masks (report.py): a quoted value (its quotes kept), a number
_VALUE_SHAPES = {
    f"'{MASK}'": r"""(?>'(?:[^'\\]|\\.)*+'|"(?:[^"\\]|\\.)*+")""",
    MASK: r"(?>-?\d++(?:[.,:]\d++)*+)",
}


def masked_values(pattern: str, example: str) -> list[str] | None:
    """The values `pattern` (report.reason_pattern) masks in `example`, in order; None when
    `example` does not read as `pattern`. Linear: possessive matches, no backtracking."""
    text = " ".join(example.split())
    cut = len(pattern) >= MAX_PATTERN_CHARS and pattern.endswith(MASK)
    whole = pattern[: -len(MASK)] if cut else pattern
    parts, tokens = _MASK_TOKEN.split(whole), _MASK_TOKEN.findall(whole)
    regex = re.escape(parts[0]) + "".join(
        f"({_VALUE_SHAPES[token]}){re.escape(part)}"
        for token, part in zip(tokens, parts[1:], strict=True)
    )
    found = (re.match if cut else re.fullmatch)(regex, text)
    return list(found.groups()) if found else None


def _reject_values(pattern: str, example: str) -> str:
    """The reject table's cell: what the pattern's first row had where it is masked."""
    values = masked_values(pattern, example)
    if values is None:  # it cannot be lined up with the pattern: the reason as it was
        text = " ".join(example.split())
        if not text or text == pattern:
            return ""
        return f'<span class="muted">first row:</span> <code>{_e(text)}</code>'
    return "".join(f"<code>{_e(v)}</code>" for v in values)


def _card(key: str, label: str, value: Any) -> str:
    return (
        f'<div class="card"><span class="n" data-k="{_e(key)}">{_number(value)}</span>'
        f'<span class="l">{_e(label)}</span></div>'
    )


def render_html(view: RunView) -> str:
    report = view.document
    http = http_summary(view)
    bucket, rows = view.timeline()
    colour = STATUS_COLOURS.get(view.status, "#777777")
    took = duration(view)
    head = [
        f"<h1>target-pendo run <code>{_e(view.run_id)}</code>"
        f'<span class="status" style="background:{colour}">{_e(view.status)}</span></h1>',
        f'<p class="meta">started {_e(view.started_at)} · finished '
        f"{_e(view.finished_at or '-')}" + (f" · {_e(took)}" if took else "") + "</p>",
    ]
    if report.dry_run:
        head.append('<p class="meta">dry run: nothing was sent</p>')
    if report.error:
        head.append(f'<p class="error">Error: {_e(report.error)}</p>')
    if report.signal:
        head.append(
            f'<p class="error">Stopped by {_e(report.signal)}: '
            f"{_number(report.unsent_rows)} row(s) read stay unsent.</p>"
        )
    if view.report is None:
        head.append(
            '<p class="error">No run report: the run did not finish (killed?). The counts '
            "are its rows in the ledger's sync_rows.</p>"
        )
    cards = [_card(key, key, view.total(key)) for key in ("received", "sent", "rejected")]
    cards += [
        _card("calls", "HTTP attempts", http["calls"]),
        _card("retries", "retries", http["retries"]),
        _card("throttled", "answered 429", http["throttled"]),
        _card("failed", "answered 5xx", http["failed"]),
    ]
    cards += [
        _card(q, f"latency {q}", "-" if http[q] is None else f"{http[q]:.0f} ms")
        for q in ("p50", "p90", "p99")
    ]
    columns = stream_columns(view)
    stream_rows = "".join(
        f"<tr><td>{_e(name)}</td><td>{_e(c.sync)}</td>"
        + "".join(
            f'<td class="num" data-k="{_e(name)}:{_e(key)}">{_number(c.get(key))}</td>'
            for key, _ in columns
        )
        + "</tr>"
        for name, c in view.streams.items()
    )
    stream_table = (
        "<table><tr><th>stream</th><th>sync</th>"
        + "".join(f'<th class="num">{_e(label)}</th>' for _, label in columns)
        + f"</tr>{stream_rows}</table>"
        if stream_rows
        else '<p class="muted">No stream had rows.</p>'
    )
    if rows:
        charts = (
            f"<h2>HTTP calls over time</h2>{calls_chart(rows, bucket)}"
            + _legend([(label, c) for _, label, c in SERIES], dashed="retries")
            + f'<p class="muted">Buckets of {bucket} s; busiest: '
            f"{http['busiest_rate']:.0f} calls/s.</p>"
            f"<h2>Latency</h2>{latency_chart(rows, bucket)}"
            + _legend(
                [(label, c) for _, label, c, _ in PERCENTILES],
                widths=[w for *_, w in PERCENTILES],
                note=latency_overlap(rows),
            )
            + f'<p class="muted">p50 / p90 / p99 of the HTTP attempts in each bucket of '
            f"{bucket} s; log scale.</p>"
        )
    else:
        charts = '<h2>HTTP calls over time</h2><p class="muted">No HTTP call was recorded.</p>'
    causes = report.retries_by_cause
    retries = (
        "<h2>Retries by stream and cause</h2><table><tr><th>stream: cause</th>"
        '<th class="num">retries</th></tr>'
        + "".join(
            f'<tr><td>{_e(k)}</td><td class="num">{_number(n)}</td></tr>'
            for k, n in sorted(causes.items())
        )
        + "</table>"
        if causes
        else ""
    )
    groups = view.rejects[:MAX_REJECT_GROUPS]
    if groups:
        cells = [_reject_values(g.pattern, g.example) for g in groups]
        with_values = any(cells)  # no column when no reason had a value masked
        rejects = (
            "<h2>Rejected rows by reason</h2>"
            '<p class="muted">Values are masked (…) so that rows of one cause share a line'
            + ("; beside each reason, what its first row had there" if with_values else "")
            + ". Each row is in the ledger's sync_rows and in "
            "state_dir/rejects/&lt;stream&gt;/&lt;day&gt;.jsonl.</p>"
            '<table id="rejects"><tr><th>stream</th><th class="num">rows</th><th>reason</th>'
            + ("<th>masked values (first row)</th>" if with_values else "")
            + "</tr>"
            + "".join(
                f'<tr><td>{_e(g.stream)}</td><td class="num" data-k="reject-count">'
                f"{_number(g.count)}</td><td>{_e(g.pattern)}"
                + (' <span class="muted">(no ledger key)</span>' if g.keyless else "")
                + "</td>"
                + (f'<td class="values">{cell}</td>' if with_values else "")
                + "</tr>"
                for g, cell in zip(groups, cells, strict=True)
            )
            + "</table>"
        )
    else:
        rejects = '<h2>Rejected rows by reason</h2><p class="muted">No row was rejected.</p>'
    generated = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    css = (resources.files("target_pendo.observe") / "report.css").read_text(encoding="utf-8")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>target-pendo run {_e(view.run_id)} ({_e(view.status)})</title>"
        f"<style>\n{css}</style></head><body>"
        + "".join(head)
        + '<section class="cards" style="--cols:5">'  # 10 cards: two rows of 5
        + f"{''.join(cards)}</section>"
        + f"<h2>Streams</h2>{stream_table}"
        + charts
        + retries
        + rejects
        + f"<footer>Generated by <code>target-pendo report</code> at {_e(generated)} from the "
        f"ledger at {_e(view.ledger)}.</footer></body></html>\n"
    )
