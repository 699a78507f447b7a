"""PNG figures for evaluation reports (matplotlib, the optional ``plot`` extra).

Two kinds cover every figure the reports need: ``lines`` (named curves over a shared
axis: error by horizon, replica curves, allocation curves, trade-off frontiers) and
``forecast_fan`` (history, actuals and a forecast's mean with its interval bands).
matplotlib is imported when a figure is drawn, with the non-interactive Agg backend,
so reports render on headless machines and the core install does not need it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from foresize.core.errors import InputError
from foresize.core.styles import line_style

Curve = tuple[Sequence[float], Sequence[float]]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise InputError(
            "figures need matplotlib: pip install 'foresize[plot]'",
            hint="or pass --no-plots",
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def lines(
    path: Path,
    curves: Mapping[str, Curve],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    markers: bool = False,
    steps: bool = False,
) -> None:
    """Named curves on one axis (:func:`lines_figure`), saved as a PNG at ``path``."""
    plt = _pyplot()
    fig = lines_figure(curves, title=title, xlabel=xlabel, ylabel=ylabel, markers=markers,
                       steps=steps)
    fig.savefig(path)
    plt.close(fig)


def close(fig: Any) -> None:
    """Release a figure made here once it is saved (pyplot keeps every figure open)."""
    _pyplot().close(fig)


def lines_figure(
    curves: Mapping[str, Curve],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    markers: bool = False,
    steps: bool = False,
    integer_y: bool = False,
) -> Any:
    """Named curves on one axis, each in its own colour and line style.

    ``integer_y``: the y values are counts (containers, replicas), so ticks fall on whole
    numbers; a small smoke run would otherwise get ticks at 0.5 of a container.
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for i, (label, (x, y)) in enumerate(curves.items()):
        style = line_style(i)
        if steps:
            ax.step(x, y, where="post", label=label, linewidth=1.2, **style)
        else:
            ax.plot(x, y, marker="o" if markers else None, markersize=3, label=label,
                    linewidth=1.2, **style)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if integer_y:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def forecast_fan(
    path: Path,
    panels: Sequence[dict[str, np.ndarray]],
    *,
    title: str,
    levels: Sequence[int] = (80, 95),
) -> None:
    """One subplot per series: history, actuals, forecast mean and its interval bands.

    Each panel holds ``history`` (the last stretch before the origin), ``actual``,
    ``mean`` and ``lo_L``/``hi_L`` arrays over the forecast steps, and ``name``.
    """
    plt = _pyplot()
    n = len(panels)
    fig, axes = plt.subplots(n, 1, figsize=(8, 2.4 * n), dpi=110, squeeze=False)
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        history = panel["history"]
        past = np.arange(-history.size, 0)
        ahead = np.arange(1, panel["mean"].size + 1)
        ax.plot(past, history, color="0.4", linewidth=1, label="history")
        for level, alpha in zip(sorted(levels, reverse=True), (0.15, 0.3), strict=False):
            ax.fill_between(
                ahead, panel[f"lo_{level}"], panel[f"hi_{level}"], alpha=alpha,
                color="tab:blue", label=f"{level}% interval", linewidth=0,
            )  # fmt: skip
        ax.plot(ahead, panel["mean"], color="tab:blue", linewidth=1.4, label="forecast")
        ax.plot(ahead, panel["actual"], color="black", linewidth=1, linestyle="--", label="actual")
        ax.set_title(str(panel["name"]), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=5)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
