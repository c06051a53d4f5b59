"""The one plain-text table printer of the command line (list, status, evaluate, bench)."""

from __future__ import annotations

from collections.abc import Sequence


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
