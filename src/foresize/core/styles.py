"""Line styles for figures: colour-blind-safe colours, each paired with its own dash.

Policies and models drawn on one axis must stay apart for a reader who cannot tell red
from green and on a greyscale print, so every curve differs in colour (Okabe and Ito's
palette, 2008) and in line style. No matplotlib here: the styles are plain keyword
arguments for ``Axes.plot``/``Axes.step``, so figures in any stage share them.
"""

from __future__ import annotations

from typing import Any

# Okabe-Ito without yellow (too faint on white) and black (kept for demand and actuals).
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00")
DASHES: tuple[Any, ...] = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)))


def line_style(index: int) -> dict[str, Any]:
    """The colour and line style of the ``index``-th curve; the first 6 all differ in both."""
    return {"color": COLOURS[index % len(COLOURS)],
            "linestyle": DASHES[(index + index // len(COLOURS)) % len(DASHES)]}
