"""The one plain-text table printer of the command line (list, status, evaluate, bench)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """Columns two spaces apart, a dashed line under the header, trailing spaces removed.

    Args:
        header: the column titles.
        rows: one sequence of cell texts per row, as many as `header`.
        align: one character per column, '<' left or '>' right (numbers); default all left.
    """
    table = [list(header), *(list(r) for r in rows)]
    if any(len(r) != len(header) for r in table) or len(align or header) != len(header):
        raise ValueError(f"every row and `align` need {len(header)} cells, one per column")
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    align = align or "<" * len(header)

    def line(cells):
        return "  ".join(
            c.rjust(w) if a == ">" else c.ljust(w) for c, w, a in zip(cells, widths, align)
        ).rstrip()

    dashes = "  ".join("-" * w for w in widths)
    return "\n".join([line(table[0]), dashes, *(line(r) for r in table[1:])])


def with_spread(value: float, spread: float | None, plain: Callable[[float], str] = str) -> str:
    """'7.672 ± 0.089': a measured value and its spread, the spread to two significant digits
    and the value to the same decimal place; `plain(value)` alone when there is no spread.

    Every '±' that the project prints (evaluate's table, the report's tables and claims)
    comes from here, so a number never shows more digits than its spread supports.
    """
    if spread is None:
        return plain(value)
    value, spread = float(value), float(spread)
    if not (math.isfinite(value) and math.isfinite(spread)) or spread <= 0:
        return f"{plain(value)} ± {plain(spread)}"
    decimals = max(0, 1 - math.floor(math.log10(spread)))
    return f"{value:.{decimals}f} ± {spread:.{decimals}f}"
