"""The monitoring chart: each step's standard time against the working time
it really took, a pair of bars per step, the late ones marked.

Rendered with matplotlib's Agg backend (no display on a server) into PNG
bytes, which /laporan sends as a photo and the workbook and the DOCX embed.
The words come from templates/documents/monitoring_words.txt.j2.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from bot.documents.monitoring import Monitoring  # noqa: E402

LATE = "#c0392b"
USED = "#2e86c1"
STANDARD = "#b3b6b7"


def render_chart(form: Monitoring, word: Callable[..., str]) -> bytes:
    # matplotlib is imported when a chart is drawn, not with the bot: it
    # costs the process tens of MiB that most of its life never uses.
    import matplotlib

    matplotlib.use("Agg")  # no display, no GUI toolkit
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    """A PNG of the form's steps; `word(name, *args)` gives each text."""
    steps = form.steps
    figure = Figure(figsize=(max(8.0, 0.7 * len(steps) + 3), 4.8), dpi=110)
    axes = figure.add_subplot()
    xs = list(range(len(steps)))
    width = 0.4
    axes.bar(
        [x - width / 2 for x in xs],
        [m.waktu for m in steps],
        width,
        color=STANDARD,
        label=word("chart_standard"),
    )
    used = [m.used_average or 0.0 for m in steps]
    colours = [LATE if m.late else USED for m in steps]
    bars = axes.bar(
        [x + width / 2 for x in xs], used, width, color=colours, label=word("chart_used")
    )
    for bar, mark in zip(bars, steps, strict=True):
        if mark.late:
            axes.annotate(
                f"{word('chart_late')} {mark.late}/{mark.done}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
                color=LATE,
                rotation=90,
                xytext=(0, 3),
                textcoords="offset points",
            )
    axes.set_xticks(xs, [str(m.number) for m in steps])
    axes.set_xlabel(word("chart_step", ""))
    axes.set_ylabel(word("chart_axis"))
    axes.set_title(word("chart_title", form.sop_name, form.period), fontsize=10)
    handles, labels = axes.get_legend_handles_labels()
    late_patch = Patch(color=LATE, label=word("chart_late"))
    axes.legend([*handles, late_patch], [*labels, word("chart_late")], fontsize=8)
    axes.margins(y=0.2)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
