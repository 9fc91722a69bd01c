"""The score trend as an SVG line chart (pygal): inline in PDFs, served as an image in pages."""
import re
import sys

import pygal
from pygal.style import Style

# pygal appends a legacy import hook (for its map plugins, unused here) to sys.meta_path; every
# failed optional import anywhere then also raises an ImportWarning. Take it out again.
sys.meta_path[:] = [finder for finder in sys.meta_path
                    if type(finder).__name__ != "PluginImportFixer"]

_STYLE = Style(font_family="'Portal CJK', sans-serif", background="white",
               plot_background="white", foreground="#333", foreground_strong="#111",
               foreground_subtle="#ccc", colors=("#1f4e79", "#b00020", "#198754"),
               label_font_size=13, major_label_font_size=13, value_font_size=12)

# pygal stamps every chart with a random id and the day it was drawn: fixed values keep the
# same figures drawing the same SVG.
_RANDOM_ID = re.compile(r"chart-[0-9a-f-]{36}")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)

# pygal prints each score one font size right of its point; the last point sits on the plot's
# right edge, so the margin must hold the widest score ("100.00": six glyphs of about 0.6 em)
# or its end is cut off ("55." instead of "55.50").
_VALUE_ROOM = _STYLE.value_font_size * (1 + 6 * 0.6) + 8


def trend_svg(points: list[tuple[str, object]], *, width: int = 560, height: int = 240) -> str:
    """A line of scores (0–100) by quarter: `points` = [(label, score or None), ...]."""
    chart = pygal.Line(width=width, height=height, show_legend=False, range=(0, 100),
                       js=[], disable_xml_declaration=True, style=_STYLE, dots_size=4,
                       print_values=True, show_y_guides=True, allow_interruptions=True,
                       explicit_size=True, value_formatter=lambda v: f"{v:.2f}",
                       margin_right=round(_VALUE_ROOM))
    chart.x_labels = [label for label, _score in points]
    chart.add("score", [None if score is None else float(score) for _label, score in points])
    svg = chart.render(is_unicode=True)
    svg = _COMMENT.sub("", svg)
    # No script inside the image (pygal's tooltip configuration): pages and PDFs show it still.
    svg = re.sub(r"<script.*?</script>", "", svg, flags=re.DOTALL)
    return _RANDOM_ID.sub("chart-trend", svg)
