"""Charts for pages: pygal SVG drawn on the server, shown as an image with a table beside it.

A chart is an `<img>` whose source is the SVG itself (a data: URI, allowed by the CSP), so a
page needs no script, no extra request and no extra query to show one; the same figures are
listed in a table under it (`chart()` in `_macros.html`) for screen readers and for anyone who
would rather read. Labels and series names come translated from the caller.
"""
import re
import sys
from base64 import b64encode
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pygal
from flask_babel import format_decimal
from pygal.style import Style

# pygal appends a legacy import hook (for its map plugins, unused here) to sys.meta_path; every
# failed optional import anywhere then also raises an ImportWarning. Take it out again.
sys.meta_path[:] = [finder for finder in sys.meta_path
                    if type(finder).__name__ != "PluginImportFixer"]

# Colours with at least 4.5:1 against white (WCAG AA), distinguishable in grey too.
PALETTE = ("#1f4e79", "#b35900", "#2d6a4f", "#7b2d8b", "#a4161a", "#495057")
STYLE = Style(font_family="'Portal CJK', 'WenQuanYi Micro Hei', 'Noto Sans CJK SC', sans-serif",
              background="white", plot_background="white", foreground="#212529",
              foreground_strong="#212529", foreground_subtle="#ced4da", colors=PALETTE,
              label_font_size=13, major_label_font_size=13, value_font_size=12,
              legend_font_size=13, title_font_size=15, tooltip_font_size=12)

_RANDOM_ID = re.compile(r"chart-[0-9a-f-]{36}")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_SCRIPT = re.compile(r"<script.*?</script>", re.DOTALL)

Series = Sequence[tuple[str, Sequence[object]]]


@dataclass(frozen=True)
class Chart:
    """One drawn chart and the same figures as a table (`headers`, then one row per label)."""

    title: str
    svg: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    @property
    def data_uri(self) -> str:
        return "data:image/svg+xml;base64," + b64encode(self.svg.encode()).decode("ascii")

    @property
    def empty(self) -> bool:
        return not self.rows


def count_text(value) -> str:
    """A count as the reader writes numbers ("1,200"); the axis steps pygal puts between two
    whole numbers (0.2, 0.4, …) stay unlabelled. The default of bar charts."""
    return format_decimal(value) if float(value).is_integer() else ""


def _text(value, formatter: Callable[[object], str]) -> str:
    return "—" if value is None else formatter(value)


def _render(chart, title: str, labels: Sequence[str], series: Series,
            formatter: Callable[[object], str], name: str) -> Chart:
    chart.x_labels = [str(label) for label in labels]
    for series_name, values in series:
        chart.add(str(series_name), [None if v is None else float(v) for v in values])
    svg = chart.render(is_unicode=True)
    # No script inside the image (pygal's tooltips), no date stamp, a fixed id: the same figures
    # draw the same SVG.
    svg = _SCRIPT.sub("", _COMMENT.sub("", svg))
    svg = _RANDOM_ID.sub(f"chart-{name}", svg)
    headers = ("", *(str(series_name) for series_name, _values in series))
    rows = tuple((str(label), *(_text(values[i], formatter) for _n, values in series))
                 for i, label in enumerate(labels))
    return Chart(str(title), svg, headers, rows)


def _options(width: int, height: int, formatter, legend: bool) -> dict:
    return dict(width=width, height=height, js=[], disable_xml_declaration=True, style=STYLE,
                explicit_size=True, show_legend=legend, legend_at_bottom=True,
                value_formatter=formatter, truncate_label=-1, truncate_legend=-1,
                # Room on the right: the last value printed beside the last point is not cut.
                margin=16, margin_right=64, spacing=12)


def bars(title: str, labels: Sequence[str], series: Series, *, name: str = "bars",
         formatter: Callable[[object], str] = count_text, stacked: bool = False,
         horizontal: bool = False, width: int = 560, height: int = 260) -> Chart:
    """Bars per label, one colour per series (stacked when the series add up to a whole)."""
    kind = {(False, False): pygal.Bar, (True, False): pygal.StackedBar,
            (False, True): pygal.HorizontalBar,
            (True, True): pygal.HorizontalStackedBar}[(stacked, horizontal)]
    chart = kind(**_options(width, height, formatter, len(series) > 1),
                 print_values=len(series) == 1 and not stacked, show_y_guides=True)
    return _render(chart, title, labels, series, formatter, name)


def line(title: str, labels: Sequence[str], series: Series, *, name: str = "line",
         formatter: Callable[[object], str] = str, value_range: tuple | None = None,
         width: int = 560, height: int = 260) -> Chart:
    """A line per series over the labels (quarters, months); gaps where a value is None."""
    chart = pygal.Line(**_options(width, height, formatter, len(series) > 1),
                       range=value_range, dots_size=4, print_values=len(series) == 1,
                       allow_interruptions=True, show_y_guides=True)
    return _render(chart, title, labels, series, formatter, name)
