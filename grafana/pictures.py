"""Draw each dashboard as a PNG from a live Prometheus, for the README (no Grafana needed).

The pictures follow the dashboards' own layout, titles, units and value mappings, but are
drawn with matplotlib: they show the data a user would see, not Grafana's exact rendering.
``make dashboard-pictures`` draws them from the demo's Prometheus (start ``make demo`` first).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from grafana.build import Dashboard
from grafana.dashboards import CRONJOB, EXPORTER, OVERVIEW
from grafana.querying import Result, run

ROOT = Path(__file__).resolve().parents[1]
BACKGROUND, PANEL, TEXT, GRID = "#111217", "#181b1f", "#ccccdc", "#2c3235"
COLOURS = {"green": "#73bf69", "orange": "#ff9830", "red": "#f2495c", "blue": "#5794f2"}
COLOURS |= {"yellow": "#fade2a", "gray": "#8e8e8e"}


def fmt(value: float, unit: str, now: float, decimals: int | None = None) -> str:
    """A value in the panel's unit, roughly as Grafana shows it."""
    if value != value:  # NaN
        return "n/a"
    if decimals is not None and unit == "short":
        return f"{value:.{decimals}f}"
    if unit == "s":
        for size, name in ((86400, "d"), (3600, "h"), (60, "min")):
            if abs(value) >= size:
                return f"{value / size:.1f} {name}"
        return f"{value:.3g} s"
    if unit == "percentunit":
        return f"{value * 100:.1f}%"
    if unit == "bytes":
        return f"{value / 2**20:.1f} MiB"
    if unit == "dateTimeFromNow":
        delta = value / 1000 - now
        return f"in {fmt(delta, 's', now)}" if delta >= 0 else f"{fmt(-delta, 's', now)} ago"
    return f"{value:.4g}"


def legend(query_legend: str, labels: dict[str, str]) -> str:
    """Grafana's ``{{label}}`` legend templating."""
    if not query_legend or query_legend == "__auto":
        return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")
    out = query_legend
    for key, value in labels.items():
        out = out.replace("{{" + key + "}}", value)
    return re.sub(r"\{\{\w+\}\}", "", out).strip()  # absent labels read as empty


def _last(series: dict[str, Any]) -> float:
    value = series["value"] if "value" in series else series["values"][-1]
    return float(value[1])


def _stat(ax: Axes, results: list[Result], now: float) -> None:
    series = [s for r in results for s in r.series]
    panel = results[0].panel
    if not series:
        ax.text(0.5, 0.45, "No data", ha="center", va="center", color=TEXT, fontsize=14)
        return
    if panel.options.get("textMode") == "name":
        text = legend(results[0].query.legend, series[0]["metric"])
        colour = TEXT
    else:
        value = _last(series[0])
        text = fmt(value, panel.unit, now, panel.decimals)
        mapped = {v: (t, c) for v, t, c in panel.mappings}.get(f"{value:g}")
        text, colour = mapped if mapped else (text, _threshold_colour(panel.steps, value))
        colour = COLOURS.get(colour, colour)
    ax.text(0.5, 0.45, text, ha="center", va="center", color=colour, fontsize=16, weight="bold")


def _threshold_colour(steps: tuple[tuple[float | None, str], ...], value: float) -> str:
    colour = steps[0][1]
    for bound, step_colour in steps[1:]:
        if bound is not None and value >= bound:
            colour = step_colour
    return COLOURS.get(colour, colour)


def _timeseries(ax: Axes, results: list[Result], now: float) -> None:
    drawn = 0
    for result in results:
        for series in result.series:
            points = [(float(t) - now, float(v)) for t, v in series["values"]]
            ax.plot(
                [t / 60 for t, _ in points],
                [v for _, v in points],
                label=legend(result.query.legend, series["metric"])[:40],
                linewidth=1.2,
            )
            drawn += 1
    ax.set_xlabel("minutes before now", color=TEXT, fontsize=6)
    ax.grid(color=GRID, linewidth=0.5)
    unit = results[0].panel.unit
    ax.yaxis.set_major_formatter(lambda v, _: fmt(v, unit, now))
    if drawn:
        ax.legend(fontsize=5, loc="upper left", framealpha=0.3, labelcolor=TEXT, ncol=2)


def _state_timeline(ax: Axes, results: list[Result], now: float) -> None:
    mapping = {v: (t, COLOURS.get(c, c)) for v, t, c in results[0].panel.mappings}
    rows = [(legend(r.query.legend, s["metric"]), s) for r in results for s in r.series]
    times = sorted({float(t) for _, s in rows for t, _ in s["values"]})
    step = (times[1] - times[0]) / 60 if len(times) > 1 else 0.5
    for row, (name, series) in enumerate(sorted(rows, key=lambda x: x[0])[-12:]):
        for t, v in series["values"]:
            _, colour = mapping.get(f"{float(v):g}", ("", GRID))
            ax.barh(row, step, left=(float(t) - now) / 60, color=colour, height=0.8)
        start = (float(series["values"][0][0]) - now) / 60
        ax.text(start, row, f"{name[:30]} ", va="center", ha="right", color=TEXT, fontsize=5)
    ax.set_yticks([])
    ax.set_xlabel("minutes before now", color=TEXT, fontsize=6)
    handles = [Rectangle((0, 0), 1, 1, color=c) for _, c in mapping.values()]
    ax.legend(handles, [t for t, _ in mapping.values()], fontsize=5, loc="lower left", ncol=5)


def _bars(ax: Axes, results: list[Result], now: float) -> None:
    result = results[0]
    rows = [(legend(result.query.legend, s["metric"]), _last(s)) for s in result.series]
    if result.query.heatmap:  # cumulative buckets -> per-bucket counts, by upper bound
        ordered = sorted(result.series, key=lambda s: float(s["metric"]["le"]))
        counts = [_last(s) for s in ordered]
        rows = [
            (legend(result.query.legend, s["metric"]), count - (counts[i - 1] if i else 0))
            for i, (s, count) in enumerate(zip(ordered, counts, strict=True))
        ]
    rows = rows[:16]
    ax.barh(range(len(rows)), [v for _, v in rows], color=COLOURS["green"])
    ax.set_yticks(range(len(rows)), [n[:30] for n, _ in rows], fontsize=5, color=TEXT)
    ax.xaxis.set_major_formatter(lambda v, _: fmt(v, result.panel.unit, now))
    ax.invert_yaxis()


def _table(ax: Axes, results: list[Result], now: float) -> None:
    lines = []
    for result in results:
        for series in result.series[:10]:
            labels = {k: v for k, v in series["metric"].items() if k not in ("__name__", "job")}
            text = " ".join(f"{k}={v}" for k, v in sorted(labels.items()))
            lines.append(f"{text[:90]}  {fmt(_last(series), result.panel.unit, now)}")
    body = "\n".join(lines) or "No data (healthy)"
    ax.text(0.01, 0.95, body, va="top", ha="left", color=TEXT, fontsize=5, family="monospace")


DRAW: dict[str, Callable[[Axes, list[Result], float], None]] = {
    "stat": _stat,
    "timeseries": _timeseries,
    "state-timeline": _state_timeline,
    "bargauge": _bars,
    "table": _table,
}


def draw(dashboard: Dashboard, results: list[Result], path: Path, now: float) -> None:
    """One PNG with every panel at its grid position."""
    model = dashboard.render()
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in model["panels"])
    fig = plt.figure(figsize=(16, height * 0.32), facecolor=BACKGROUND)
    fig.suptitle(dashboard.title, color=TEXT, fontsize=12, x=0.004, y=0.995, ha="left")
    by_panel: dict[int, list[Result]] = {}
    for result in results:
        by_panel.setdefault(id(result.panel), []).append(result)
    panels = iter(dashboard.panels())  # in the same order as the model's non-row panels
    header, unit_height = 0.04, 0.95 / height  # figure fractions: title band, one grid row
    for item in model["panels"]:
        pos = item["gridPos"]
        top = 1 - header - pos["y"] * unit_height
        axes_pad = 0.03 if item["type"] in ("timeseries", "bargauge") else 0.004
        rect = (
            pos["x"] / 24 + axes_pad,
            top - pos["h"] * unit_height + 0.012,
            pos["w"] / 24 - axes_pad - 0.004,
            pos["h"] * unit_height - 0.03,
        )
        if item["type"] == "row":
            fig.text(0.004, top - 0.012, item["title"], color=TEXT, fontsize=9, weight="bold")
            continue
        ax = fig.add_axes(rect, facecolor=PANEL)
        ax.set_title(item["title"], color=TEXT, fontsize=7, loc="left")
        ax.tick_params(colors=TEXT, labelsize=5)
        for spine in ax.spines.values():
            spine.set_color(GRID)
        DRAW[item["type"]](ax, by_panel[id(next(panels))], now)
        if item["type"] in ("stat", "table"):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.savefig(path, dpi=110, facecolor=BACKGROUND)
    plt.close(fig)


def main() -> int:
    """Query the Prometheus for each dashboard and write docs/dashboards/<uid>.png."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--minutes", type=int, default=30, help="time range to draw")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--cronjob", default="flaky-etl", help="CronJob for the detail dashboard")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboards")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    end = time.time()
    start = end - 60 * args.minutes
    variables = {
        OVERVIEW.uid: {"namespace": args.namespace},
        CRONJOB.uid: {"namespace": args.namespace, "cronjob": args.cronjob},
        EXPORTER.uid: {"instance": ".+"},
    }
    for dashboard in (OVERVIEW, CRONJOB, EXPORTER):
        results = run(args.prometheus, dashboard, variables[dashboard.uid], start, end, step=30)
        failed = [r for r in results if r.error]
        for r in failed:
            print(f"{dashboard.uid}: {r.panel.title}: {r.error}", file=sys.stderr)
        path = args.out / f"{dashboard.uid.removeprefix('kbe-')}.png"
        draw(dashboard, results, path, end)
        empty = sum(1 for r in results if not r.series)
        print(f"{path.relative_to(ROOT)}: {len(results)} queries, {empty} empty")
    return 0


if __name__ == "__main__":
    sys.exit(main())
