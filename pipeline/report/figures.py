"""The report's figures, drawn with matplotlib and returned as inline SVG text.

Figures use matplotlib's object API (no pyplot state). Colours are the Okabe-Ito palette, which stays
distinct for the common colour-vision deficiencies, and every series also differs in pattern, line style
or marker shape so the figures read in black and white. Text is drawn as paths, so no font is needed.
Element ids inside each SVG are prefixed with the figure's name; marker events carry the ids
``<prefix>-<event_id>`` that the page's script makes clickable.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator

from pipeline.report.data import ReportData
from pipeline.report.derive import (
    EVENT_ROWS,
    Event,
    QuestionGap,
    Trend,
    binned_share,
    kind_glyph,
    kind_row,
    overlaps,
    role_union,
    silences,
    timeline_bin_s,
)
from pipeline.report.summary import clock

#: Okabe-Ito colours.
THERAPIST = "#0072B2"  # blue
CLIENT = "#E69F00"  # orange
OVERLAP = "#000000"
SILENCE = "#BBBBBB"
EVENT_COLOURS = {"long_silence": "#555555", "we_language": "#009E73", "rupture_candidate": "#D55E00",
                 "topic_avoidance": "#CC79A7"}
INK = "#222222"
ROLE_STYLE = {  # colour, hatch, line style, marker
    "therapist": (THERAPIST, "", "-", "o"),
    "client": (CLIENT, "////", "--", "s"),
}

_RC = {
    "svg.fonttype": "path",
    "svg.hashsalt": "alliance-report",
    "font.size": 9,
    "font.family": "DejaVu Sans",
    "hatch.linewidth": 0.7,
    "axes.edgecolor": "#666666",
    "axes.labelcolor": INK,
    "xtick.color": "#444444",
    "ytick.color": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _svg(fig: Figure, *, prefix: str, title: str) -> str:
    """Serialise a figure as an inline ``<svg>`` element with prefixed ids and an accessible name."""
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight",
                    pad_inches=0.05, transparent=False, facecolor="white")
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', text)
    text = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{prefix}-{m.group(1)})", text)
    text = re.sub(r'((?:xlink:)?href)="#([^"]+)"', lambda m: f'{m.group(1)}="#{prefix}-{m.group(2)}"', text)
    head, rest = text.split(">", 1)
    head = re.sub(r'\s(width|height)="[^"]*"', "", head)
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;")
    return (f'{head} class="figure-svg" role="img" aria-labelledby="{prefix}-svgtitle" '
            f'preserveAspectRatio="xMinYMin meet">'
            f'<title id="{prefix}-svgtitle">{safe_title}</title>{rest}')


def _new_figure(width_in: float, height_in: float) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width_in, height_in), dpi=100)


def _time_axis(ax, duration_s: float) -> None:
    for step in (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if duration_s / step <= 12:
            break
    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: clock(x)))
    ax.set_xlim(0, max(duration_s, 1.0))
    ax.set_xlabel("time in the session (min:s)")


def timeline(data: ReportData, evs: Sequence[Event], *, prefix: str = "timeline") -> str:
    """Who spoke when, silences, overlaps and marker events (each event a clickable point).

    Up to 20 minutes each diarization segment is drawn; longer sessions show the share of each time bin
    spoken by each person (see :func:`pipeline.report.derive.timeline_bin_s`).
    """
    with matplotlib.rc_context(_RC):
        duration = data.duration_s
        rows = [r for r in EVENT_ROWS if any(kind_row(e.kind) == r for e in evs)]
        both = overlaps(data.speech)
        lanes = [("therapist", "Therapist"), ("client", "Client"),
                 ("overlap", "Both at once" if both else "Both at once (none)")]
        lanes += [(f"ev:{r}", r) for r in rows]
        y = {key: len(lanes) - 1 - i for i, (key, _) in enumerate(lanes)}
        fig = _new_figure(10.0, 0.9 + 0.42 * len(lanes))
        ax = fig.add_subplot()
        bin_s = timeline_bin_s(duration)
        speech = {r: role_union(data.speech, r) for r in ("therapist", "client")}
        if bin_s is None:
            for m in silences(data):
                ax.axvspan(m.start_s, m.end_s, ymin=0, ymax=1, facecolor=SILENCE, edgecolor="#777777",
                           hatch="xx", linewidth=0, alpha=0.55, zorder=0)
            for role in ("therapist", "client"):
                colour, hatch, _ls, _mk = ROLE_STYLE[role]
                ax.broken_barh([(iv.start_s, iv.duration_s) for iv in speech[role]], (y[role] - 0.35, 0.7),
                               facecolors=colour, edgecolor=INK, hatch=hatch, linewidth=0.4, zorder=2)
            ax.broken_barh([(iv.start_s, max(iv.duration_s, duration / 1500)) for iv in both],
                           (y["overlap"] - 0.2, 0.4), facecolors=OVERLAP, zorder=2)
        else:
            for role in ("therapist", "client"):
                colour, hatch, _ls, _mk = ROLE_STYLE[role]
                share = binned_share(speech[role], duration_s=duration, bin_s=bin_s)
                ax.bar([(k + 0.5) * bin_s for k in range(len(share))], [0.8 * s for s in share], width=bin_s * 0.92,
                       bottom=y[role] - 0.4, color=colour, edgecolor=INK, hatch=hatch, linewidth=0.3, zorder=2)
            share = binned_share(both, duration_s=duration, bin_s=bin_s)
            ax.bar([(k + 0.5) * bin_s for k in range(len(share))], [0.8 * min(1.0, 5 * s) for s in share],
                   width=bin_s * 0.92, bottom=y["overlap"] - 0.4, color=OVERLAP, zorder=2)
        size = 8 if len(evs) <= 150 else 5.5
        for e in evs:
            lane = y[f"ev:{kind_row(e.kind)}"]
            colour = EVENT_COLOURS.get(e.kind, "#444444")
            if e.end_s - e.start_s > duration / 400:
                ax.plot([e.start_s, e.end_s], [lane, lane], color=colour, linewidth=2.0, zorder=3,
                        solid_capstyle="butt")
            (point,) = ax.plot([e.start_s], [lane], linestyle="none", marker=kind_glyph(e.kind), markersize=size,
                               markerfacecolor=colour, markeredgecolor="black", markeredgewidth=0.6, zorder=4)
            point.set_gid(e.event_id)
        ax.set_yticks([y[k] for k, _ in lanes], [label for _, label in lanes])
        ax.set_ylim(-0.6, len(lanes) - 0.4)
        ax.spines["left"].set_visible(False)
        ax.tick_params(axis="y", length=0)
        for k, _ in lanes[3:]:
            ax.axhline(y[k], color="#DDDDDD", linewidth=0.6, zorder=1)
        _time_axis(ax, duration)
        ax.grid(axis="x", color="#E5E5E5", linewidth=0.6, zorder=0)
        if bin_s is not None:
            ax.set_title(f"Share of each {clock(bin_s)} spoken by each person (bar height); events as points",
                         loc="left", fontsize=9, color="#444444")
        title = "Session timeline: who spoke when, overlaps, silences and marker events"
        return _svg(fig, prefix=prefix, title=title)


def we_language(data: ReportData, *, prefix: str = "we") -> str:
    """Cumulative "we"-language tokens over the session, one line per person."""
    with matplotlib.rc_context(_RC):
        fig = _new_figure(10.0, 2.3)
        ax = fig.add_subplot()
        duration = data.duration_s
        for role in ("therapist", "client"):
            colour, _h, ls, mk = ROLE_STYLE[role]
            times = [m.start_s for m in data.markers if m.kind == "we_language" and m.speaker_role == role]
            xs = [0.0] + times + [duration]
            ys = [0] + list(range(1, len(times) + 1)) + [len(times)]
            ax.step(xs, ys, where="post", color=colour, linestyle=ls, linewidth=1.8,
                    label=f"{role.capitalize()} ({len(times)})")
            if 0 < len(times) <= 80:
                ax.plot(times, range(1, len(times) + 1), linestyle="none", marker=mk, markersize=4.5,
                        markerfacecolor=colour, markeredgecolor="black", markeredgewidth=0.5)
        _time_axis(ax, duration)
        ax.set_ylabel('"we" tokens so far')
        ax.yaxis.set_major_locator(MultipleLocator(max(1, _nice_step(ax.get_ylim()[1]))))
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", frameon=False)
        ax.grid(axis="y", color="#E5E5E5", linewidth=0.6)
        return _svg(fig, prefix=prefix, title='"We"-language over the session: running count per person')


def _nice_step(top: float) -> int:
    for step in (1, 2, 5, 10, 20, 50, 100, 200):
        if top / step <= 6:
            return step
    return 500


def question_gaps(gaps: Sequence[QuestionGap], duration_s: float, *, prefix: str = "qgaps") -> str:
    """Time from each therapist question to the next speech, as a lollipop chart with a 2 s reference."""
    with matplotlib.rc_context(_RC):
        fig = _new_figure(10.0, 2.2)
        ax = fig.add_subplot()
        for g in gaps:
            long = g.gap_s >= 2.0
            ax.plot([g.at_s, g.at_s], [0, g.gap_s], color="#555555", linewidth=1.0, zorder=2)
            ax.plot([g.at_s], [g.gap_s], linestyle="none", marker="D" if long else "o",
                    markersize=7 if long else 5, markerfacecolor="#D55E00" if long else "white",
                    markeredgecolor="black", markeredgewidth=0.7, zorder=3)
        ax.axhline(2.0, color=INK, linestyle=(0, (4, 3)), linewidth=0.9)
        ax.axhline(0.0, color="#888888", linewidth=0.6)
        top = max([2.5] + [g.gap_s * 1.15 for g in gaps])
        bottom = min([-0.5] + [g.gap_s * 1.15 for g in gaps])
        ax.set_ylim(bottom, top)
        ax.text(0.995, 2.0, "2 s", transform=ax.get_yaxis_transform(), ha="right", va="bottom", fontsize=8)
        _time_axis(ax, duration_s)
        ax.set_ylabel("seconds until\nnext speech")
        ax.grid(axis="y", color="#E5E5E5", linewidth=0.6)
        return _svg(fig, prefix=prefix, title="Silence after each therapist question (diamond: 2 s or more)")


def sparkline_limits(values: Sequence[float | None], *, baseline: float | None,
                     scale: tuple[float, float] | None = None) -> tuple[float, float]:
    """The y range of a sparkline.

    With ``scale`` (the indicator's fixed range) the range is that scale, widened only to keep a value outside
    it visible: two nearly equal sessions stay nearly level. Without one, the data's range with 20 % padding.
    """
    ys = [v for v in values if v is not None] + ([baseline] if baseline is not None else [])
    if scale is not None:
        lo, hi = min([scale[0], *ys]), max([scale[1], *ys])
        pad = (hi - lo) * 0.05
        return (lo - pad, hi + pad)
    lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    pad = (hi - lo) * 0.2 or abs(hi) * 0.2 or 0.5
    return (lo - pad, hi + pad)


def sparkline(values: Sequence[float | None], *, baseline: float | None, prefix: str, title: str,
              scale: tuple[float, float] | None = None, band: tuple[float, float] | None = None) -> str:
    """A small line of one series across sessions; the last point (this session) is a large black diamond.

    ``scale``: the indicator's fixed y range (see :func:`sparkline_limits`); ``band``: the client's usual range,
    drawn as a light band (element id ``<prefix>-usual``).
    """
    with matplotlib.rc_context(_RC):
        fig = _new_figure(2.4, 0.75)
        ax = fig.add_axes((0.03, 0.12, 0.94, 0.8))
        xs = [i for i, v in enumerate(values) if v is not None]
        ys = [v for v in values if v is not None]
        if band is not None:
            patch = ax.axhspan(band[0], band[1], facecolor="#56B4E9", alpha=0.25, linewidth=0, zorder=0)
            patch.set_gid("usual")
        if baseline is not None:
            ax.axhline(baseline, color="#666666", linestyle=(0, (3, 2)), linewidth=0.9)
        ax.plot(xs, ys, color="#444444", linewidth=1.2, marker="o", markersize=3, markerfacecolor="white",
                markeredgecolor="#444444")
        if values and values[-1] is not None:
            ax.plot([len(values) - 1], [values[-1]], linestyle="none", marker="D", markersize=6.5, color="black")
        ax.set_ylim(*sparkline_limits(values, baseline=baseline, scale=scale))
        ax.set_xlim(-0.4, max(len(values) - 0.6, 0.6))
        ax.axis("off")
        return _svg(fig, prefix=prefix, title=title)


def trend_sparkline(t: Trend, *, prefix: str, scale: tuple[float, float] | None = None) -> str:
    return sparkline(t.values, baseline=t.baseline, prefix=prefix, scale=scale, band=t.usual,
                     title=f"{t.label} across {len(t.values)} sessions; this session is the last point")
