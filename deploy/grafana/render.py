"""Render a dashboard to a PNG from a live Prometheus, without Grafana.

    streamsense dashboards render --prometheus http://127.0.0.1:9090 --out docs/dashboard.png

Each time-series panel of the dashboard becomes a matplotlib chart of its queries'
``/api/v1/query_range`` results over the last ``--minutes``; a stat panel shows its last
values. It is a picture of what the Grafana dashboard shows, for docs and quick looks.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploy.observability import panels
from streamsense.errors import StreamsenseError

UNIT_SUFFIX = {"s": " (s)", "reqps": " (/s)", "percentunit": " (ratio)"}


class PrometheusError(StreamsenseError):
    """Prometheus did not answer a query, or answered with an error."""


def query_range(
    base_url: str, expr: str, start: float, end: float, step: float, timeout_s: float = 30
) -> list[dict[str, Any]]:
    """The ``result`` of a range query (a list of series with ``metric`` and ``values``)."""
    if not base_url.startswith(("http://", "https://")):
        raise PrometheusError(f"not an http(s) URL: {base_url!r}")
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    url = f"{base_url.rstrip('/')}/api/v1/query_range?{params}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (checked)
            body = json.loads(response.read())
    except OSError as exc:
        raise PrometheusError(f"query_range {expr!r} on {base_url} failed: {exc}") from exc
    if body.get("status") != "success":
        raise PrometheusError(f"query_range {expr!r}: {body.get('error', body)}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's ``{{label}}`` legend format filled in from a series' labels."""
    if not template or template == "__auto":
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__") or "-"
    out = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)
    return out.strip() or "-"


def render(
    dashboard: dict[str, Any], prometheus: str, out: Path, minutes: float = 15, columns: int = 3
) -> int:
    """Draw ``dashboard`` from ``prometheus`` into ``out``; return how many panels had data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [p for p in panels(dashboard) if p["type"] in ("timeseries", "stat")]
    end = time.time()
    start = end - minutes * 60
    step = max(1.0, (end - start) / 240)
    rows = math.ceil(len(shown) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.2 * rows), squeeze=False)
    with_data = 0
    for ax, panel in zip(axes.flat, shown, strict=False):
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        ax.set_title(panel["title"] + UNIT_SUFFIX.get(unit, ""), fontsize=10, loc="left")
        lines: list[tuple[str, list[float], list[float]]] = []
        for tgt in panel["targets"]:
            for series in query_range(prometheus, tgt["expr"], start, end, step):
                xs = [float(t) for t, _ in series["values"]]
                ys = [float(v) for _, v in series["values"]]
                lines.append((legend(tgt.get("legendFormat", ""), series["metric"]), xs, ys))
        if lines:
            with_data += 1
        if panel["type"] == "stat":
            ax.axis("off")
            text = (
                "\n".join(f"{name}: {ys[-1]:.3g}" for name, _, ys in lines[:6] if ys) or "no data"
            )
            ax.text(0.02, 0.5, text, fontsize=13, va="center", family="monospace")
            continue
        for name, xs, ys in lines[:12]:
            ax.plot([datetime.fromtimestamp(x, UTC) for x in xs], ys, label=name, linewidth=1.2)
        if not lines:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        if lines:
            ax.legend(fontsize=6, loc="upper left", ncol=2 if len(lines) > 6 else 1)
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    stamp = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%d %H:%M UTC")
    fig.suptitle(f"{dashboard['title']} — last {minutes:g} min to {stamp}", fontsize=13)
    fig.autofmt_xdate()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return with_data
