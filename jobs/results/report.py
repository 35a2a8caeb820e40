"""``riverflink report OUT_DIR``: see at a glance whether the models learn and where drift hits.

Draws, from an output directory, the prequential learning curve overall and for
the busiest keys (rolling accuracy for classifiers, rolling absolute error for
regressors, against ``n``) with drift alerts marked (those of ``--feature-drift`` per
feature, each in a colour of its own), and the rejected lines by reason. Writes PNG
figures, or one self-contained HTML page embedding them, and
prints the summary table.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from riverflink.results.outputs import OutputSummary, read_output_dir
from riverflink.results.summary import readable_key, summary_table

__all__ = ["figures", "write_report"]

_ALERT_COLOR = "#d62728"
#: Colours of the features whose drift alerts a figure marks, in order of the features' names.
_FEATURE_COLORS = ("#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def _feature_colors(names) -> dict:
    """Feature name -> colour, for every feature named in ``names`` (those with alerts)."""
    names = sorted(set(names))
    return {name: _FEATURE_COLORS[i % len(_FEATURE_COLORS)] for i, name in enumerate(names)}


def _mark_feature_alerts(ax, by_feature: dict, colors: dict) -> None:
    """Short ticks along the bottom of ``ax``, one row per feature: where each feature's
    values drifted (``--feature-drift``)."""
    for row, (name, ns) in enumerate(sorted(by_feature.items())):
        ax.plot(
            ns,
            [0.05 + 0.05 * row] * len(ns),
            "|",
            color=colors[name],
            markersize=10,
            markeredgewidth=1.5,
            transform=ax.get_xaxis_transform(),
            label=f"feature {name!r} drifted ({len(ns)})",
        )


def _window(labeled: int) -> int:
    """Rolling window for a curve of ``labeled`` points: smooth, but still responsive."""
    return max(10, min(500, labeled // 20))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _ylabel(summary: OutputSummary, window: int | None = None) -> str:
    what = "accuracy" if summary.task == "classification" else "absolute error"
    return f"rolling {what}" + (f" (last {window})" if window else "")


def _overall_figure(summary: OutputSummary, plt):
    """Across keys: the mean score of predictions made after n records of their key."""
    fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
    by_n = summary.keyed.scores.by_n()  # n -> (sum, count) of the scores at n
    if by_n:
        top = max(by_n) + 1
        width = max(1, top // 200)
        bins: dict = {}
        for n, (total, count) in by_n.items():
            t, c = bins.get(n // width, (0.0, 0))
            bins[n // width] = (t + total, c + count)
        xs = sorted(bins)
        ax.plot(
            [x * width for x in xs],
            [bins[x][0] / bins[x][1] for x in xs],
            color="#1f77b4",
            linewidth=1.5,
            label=f"all keys ({summary.metric_name} of predictions at n, bins of {width})",
        )
    alert_ns = summary.keyed.alerts.error_ns()
    if 0 < len(alert_ns) <= 30:
        for i, n in enumerate(alert_ns):
            ax.axvline(
                n,
                color=_ALERT_COLOR,
                linestyle="--",
                linewidth=0.8,
                alpha=0.7,
                label=f"drift alerts ({len(alert_ns)}), at the n of their key" if i == 0 else None,
            )
    elif alert_ns:
        ax.plot(
            alert_ns,
            [0.01] * len(alert_ns),
            "|",
            color=_ALERT_COLOR,
            markersize=14,
            transform=ax.get_xaxis_transform(),
            label=f"drift alerts ({len(alert_ns)}), at the n of their key",
        )
    by_feature = summary.keyed.alerts.feature_ns()
    _mark_feature_alerts(ax, by_feature, _feature_colors(by_feature))
    overall = summary.overall()
    title = f"Learning curve over {len(summary.keys):,} keys"
    if overall is not None:
        title += f": {summary.metric_name} {overall:.3f} overall"
    ax.set_title(title)
    ax.set_xlabel("n (records of the key seen before the prediction)")
    ax.set_ylabel(summary.metric_name or "score")
    if summary.task == "classification":
        ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right" if summary.higher_is_better else "upper right", fontsize=8)
    fig.tight_layout()
    return fig


def _keys_figure(summary: OutputSummary, plt, keys: int):
    busiest = [c for c in summary.busiest(keys) if c.scores]
    if not busiest:
        return None
    cols = 2 if len(busiest) > 1 else 1
    rows = (len(busiest) + cols - 1) // cols
    fig, axes = plt.subplots(
        rows, cols, figsize=(9, 2.6 * rows), dpi=100, squeeze=False, sharex=False
    )
    colors = _feature_colors(name for c in busiest for name in c.feature_alerts)
    for ax, key_curve in zip(axes.flat, busiest):
        window = _window(key_curve.labeled)
        xs, ys = key_curve.rolling(window)
        ax.plot(xs, ys, color="#1f77b4", linewidth=1.2)
        for i, n in enumerate(key_curve.alerts):
            ax.axvline(
                n,
                color=_ALERT_COLOR,
                linestyle="--",
                linewidth=1,
                label="drift alert" if i == 0 else None,
            )
        _mark_feature_alerts(ax, key_curve.feature_alerts, colors)
        metric = key_curve.metric()
        features = sum(len(ns) for ns in key_curve.feature_alerts.values())
        ax.set_title(
            f"key {readable_key(key_curve.key)[:30]}: {summary.metric_name} {metric:.3f}, "
            f"{len(key_curve.alerts)} alerts" + (f", {features} on features" if features else ""),
            fontsize=9,
        )
        ax.set_ylabel(_ylabel(summary, window), fontsize=8)
        if summary.task == "classification":
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        if key_curve.alerts or key_curve.feature_alerts:
            ax.legend(fontsize=7, loc="lower left")
    for ax in list(axes.flat)[len(busiest) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("n", fontsize=8)
    fig.suptitle(f"The {len(busiest)} busiest keys", fontsize=11)
    fig.tight_layout()
    return fig


def _rejected_figure(summary: OutputSummary, plt):
    if not summary.rejected:
        return None
    reasons = summary.rejected.most_common(12)
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(reasons) + 1.2), dpi=100)
    labels = [reason for reason, _ in reasons][::-1]
    values = [count for _, count in reasons][::-1]
    bars = ax.barh(labels, values, color="#7f7f7f")
    ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3, fontsize=8)
    ax.set_title(f"Rejected lines by reason ({summary.counts['rejected']:,})")
    ax.set_xlabel("lines")
    ax.tick_params(axis="y", labelsize=8)
    ax.margins(x=0.12)
    fig.tight_layout()
    return fig


def figures(summary: OutputSummary, *, keys: int = 6) -> dict:
    """name -> PNG bytes: ``overall``, ``keys`` (if any key is labeled), ``rejected`` (if any)."""
    plt = _pyplot()
    out = {}
    made = {
        "overall": _overall_figure(summary, plt),
        "keys": _keys_figure(summary, plt, keys),
        "rejected": _rejected_figure(summary, plt),
    }
    for name, fig in made.items():
        if fig is None:
            continue
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        out[name] = buffer.getvalue()
    return out


def _html(summary: OutputSummary, pngs: dict, table: str) -> str:
    images = "\n".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,'
        f'{base64.b64encode(data).decode()}"></figure>'
        for name, data in pngs.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>riverflink report: {html.escape(str(summary.directory))}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 960px; margin: 2em auto; color: #222; }}
img {{ max-width: 100%; }} figure {{ margin: 1.5em 0; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 13px; }}
</style></head>
<body>
<h1>riverflink report</h1>
<p>{html.escape(str(summary.directory))}</p>
<pre>{html.escape(table)}</pre>
{images}
</body></html>
"""


def write_report(out_dir, *, keys: int = 6, html_path=None, png_dir=None) -> tuple[str, list]:
    """Read ``out_dir``; write the HTML page or the PNGs; return (summary table, files written).

    With neither ``html_path`` nor ``png_dir``, the page goes to ``OUT_DIR/report.html``.
    """
    if keys < 1:
        raise ValueError(f"--keys must be a whole number >= 1, not {keys}")
    summary = read_output_dir(out_dir)
    table = summary_table(summary, keys=max(keys, 10))
    pngs = figures(summary, keys=keys)
    written = []
    if png_dir is not None:
        png_dir = Path(png_dir)
        png_dir.mkdir(parents=True, exist_ok=True)
        for name, data in pngs.items():
            path = png_dir / f"{name}.png"
            path.write_bytes(data)
            written.append(path)
    else:
        path = Path(html_path) if html_path is not None else Path(out_dir) / "report.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_html(summary, pngs, table), encoding="utf-8")
        written.append(path)
    return table, written
