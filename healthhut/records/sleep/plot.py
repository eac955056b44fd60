"""The night as a PNG a doctor can read: SpO2 with desaturations shaded, pulse, airflow with apneas marked.

matplotlib is an optional extra (`healthhut[plot]`); it is imported here only, inside the function, with the
Agg canvas and no pyplot (no global figure state). The analysis never imports this module.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from healthhut.errors import SleepDataError
from healthhut.records.sleep.analysis import NightAnalysis

EVENT_COLOURS = {"apnea": "#c0392b", "hypopnea": "#e67e22", "desaturation": "#2e86c1"}


def _times(start: datetime, count: int) -> Any:
    """One datetime64 per second from `start` (1 Hz series)."""
    return np.datetime64(start, "s") + np.arange(count).astype("timedelta64[s]")


def render_night_png(analysis: NightAnalysis, *, title: str | None = None, width_in: float = 14.0) -> bytes:
    """Render the night; returns PNG bytes. SleepDataError if matplotlib is not installed."""
    try:
        from matplotlib import dates as mdates
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise SleepDataError("plots need matplotlib", advice="install the plot extra: pip install 'healthhut[plot]'") \
            from None

    start = analysis.start.replace(tzinfo=None)   # wall clock of the recording, as the doctor reads it
    panels = 2 + (analysis.airflow is not None)
    fig = Figure(figsize=(width_in, 2.4 * panels + 0.8), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(panels, 1, sharex=True)
    m = analysis.metrics

    spo2_ax = axes[0]
    if analysis.spo2 is not None:
        spo2_ax.plot(_times(start, len(analysis.spo2)), analysis.spo2, color="#1f4e79", linewidth=0.6)
    for d in analysis.desaturations:
        spo2_ax.axvspan(start + timedelta(seconds=d.onset), start + timedelta(seconds=d.end),
                        color=EVENT_COLOURS["desaturation"], alpha=0.25, linewidth=0)
    spo2_ax.axhline(90, color="#7f8c8d", linewidth=0.8, linestyle="--")
    spo2_ax.set_ylim(max(50, (m.nadir_spo2 or 80) - 5), 100.5)
    spo2_ax.set_ylabel("SpO2 %")

    pulse_ax = axes[1]
    if analysis.pulse is not None:
        pulse_ax.plot(_times(start, len(analysis.pulse)), analysis.pulse, color="#7d3c98", linewidth=0.6)
    pulse_ax.set_ylabel("pulse /min")

    if analysis.airflow is not None:
        flow_ax = axes[2]
        flow_ax.plot(_times(start, len(analysis.airflow.envelope)), analysis.airflow.envelope, color="#117864",
                     linewidth=0.5)
        for e in analysis.events:
            if e.kind in ("apnea", "hypopnea"):
                flow_ax.axvspan(e.start.replace(tzinfo=None),
                                e.start.replace(tzinfo=None) + timedelta(seconds=e.duration_s),
                                color=EVENT_COLOURS[e.kind], alpha=0.45, linewidth=0)
        flow_ax.set_ylabel("airflow excursion")

    bottom = axes[-1]
    bottom.xaxis.set_major_locator(mdates.HourLocator())
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    bottom.set_xlabel(f"time of night (recording started {start:%Y-%m-%d %H:%M})")
    headline = [f"{m.severity_basis} {m.ahi if m.ahi is not None else (m.odi3 or 0):.1f}/h" if m.severity_basis
                else "", f"ODI3 {m.odi3:.1f}/h" if m.odi3 is not None else "",
                f"nadir {m.nadir_spo2:.0f} %" if m.nadir_spo2 is not None else "",
                f"longest apnea {m.longest_apnea_seconds:.0f} s" if m.longest_apnea_seconds else "",
                analysis.data_quality]
    fig.suptitle(title or " | ".join(part for part in headline if part), fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
