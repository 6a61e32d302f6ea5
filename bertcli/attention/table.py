"""The heads' patterns as a rich table: layers down, heads across, a short name and score each."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from bertcli.attention.patterns import BROAD, PATTERNS, HeadPattern
from bertcli.attention.picture import SHORT

STYLES = {
    "next": "bold blue",
    "previous": "bold cyan",
    "same": "bold green",
    "other_sentence": "bold magenta",
    "subword": "bold red",
    "delimiter": "white",
    BROAD: "dim",
}


def pattern_table(heads: Sequence[HeadPattern], title: str) -> Group:
    """Title, grid, legend; the title and legend outside the table, which would wrap them at
    the grid's width."""
    layers = 1 + max(h.layer for h in heads)
    n_heads = 1 + max(h.head for h in heads)
    counts = Counter(h.pattern for h in heads)
    legend = "heads: " + ", ".join(f"{SHORT[key]} {counts[key]}" for key in (*PATTERNS, BROAD))
    legend += (
        "\n(next/prev token, same word, same word in the other sentence, piece of the same "
        "word, [CLS]/[SEP]; broad: none fits, score = spread, 1 = uniform)"
    )
    # No borders and only the separating blank between cells: 12 heads fit an 80-column terminal.
    table = Table(
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
        pad_edge=False,
    )
    table.add_column("L", justify="right")
    for head in range(n_heads):
        table.add_column(f"h{head}", justify="center", min_width=5, no_wrap=True)
    grid = {(h.layer, h.head): h for h in heads}
    for layer in range(layers):
        cells = []
        for head in range(n_heads):
            found = grid[(layer, head)]
            cells.append(
                Text(
                    f"{SHORT[found.pattern]}\n{found.score:.2f}".replace("0.", "."),
                    style=STYLES[found.pattern],
                )
            )
        table.add_row(str(layer), *cells)
    return Group(Text(title, style="bold"), table, Text(legend, style="dim"))
