"""The evaluation protocols by kind, and one run of several into one report.

``foresize evaluate KIND`` (and notebooks) call :func:`run_evaluation`: each kind's
section builder runs on the chosen dataset and adds its sections to the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foresize.core.errors import InputError

if TYPE_CHECKING:  # the report loads polars: `foresize evaluate --help` reads KINDS without it
    from foresize.evaluate.report import Report, Section


@dataclass(frozen=True, slots=True)
class Run:
    """What every evaluation section builder is given."""

    dataset: str
    mirror: Path | None
    smoke: int | None
    plots: bool
    engine: str
    address: str | None
    seed: int
    anchors: tuple[str, ...] | None = None


def _forecast(run: Run) -> list[Section]:
    from foresize.evaluate.forecasting import forecast_sections

    return forecast_sections(run.dataset, mirror=run.mirror, smoke=run.smoke,
                             plots_on=run.plots, engine=run.engine, address=run.address,
                             seed=run.seed, anchors=run.anchors)


def _rightsize(run: Run) -> list[Section]:
    if run.dataset == "alibaba-pai-2020":
        from foresize.evaluate.pai import pai_sections

        return pai_sections(mirror=run.mirror)
    from foresize.evaluate.rightsizing import rightsize_sections

    return rightsize_sections(run.dataset, mirror=run.mirror, smoke=run.smoke,
                              plots_on=run.plots)


def _autoscale(run: Run) -> list[Section]:
    from foresize.evaluate.autoscaling import autoscale_sections

    return autoscale_sections(run.dataset, mirror=run.mirror, smoke=run.smoke,
                              plots_on=run.plots)


def _schedule(run: Run) -> list[Section]:
    from foresize.evaluate.scheduling import schedule_sections

    return schedule_sections(mirror=run.mirror, smoke=run.smoke is not None, plots_on=run.plots,
                             engine=run.engine, address=run.address, seed=run.seed)


# kind -> (section builder, datasets it runs on; None = any, it brings its own trace)
KINDS: dict[str, tuple[Callable[[Run], list[Section]], tuple[str, ...] | None]] = {
    "forecast": (_forecast, ("alibaba-gentd26",)),
    "rightsize": (_rightsize, ("alibaba-gentd26", "alibaba-pai-2020")),
    "autoscale": (_autoscale, ("alibaba-gentd26",)),
    "schedule": (_schedule, None),
}


def check_kind(kind: str, dataset: str) -> None:
    """An InputError when the protocol ``kind`` does not run on ``dataset``."""
    supported = KINDS[kind][1]
    if supported is not None and dataset not in supported:
        raise InputError(f"evaluate {kind}: runs on {', '.join(supported)}, not {dataset!r}",
                         hint=f"foresize evaluate {kind} --dataset {supported[0]}")


DOCS = {
    "forecast": "Rolling-origin forecast backtest of foresize's forecasters against "
                "statsforecast/mlforecast anchors (when installed).",
    "rightsize": "Right-sizing protocol: recommend on 70%, score on 30%; foresize against "
                 "VPA-style, KRR-style, history max and the oracle.",
    "autoscale": "Autoscaling comparison on demand series: static, HPA, predictive, hybrid "
                 "and the oracle.",
    "schedule": "Scheduler placement policies under the FGD inflation protocol (openb).",
    "all": "Every evaluation above, into one report.",
}


def run_evaluation(kinds: list[str], run: Run, parameters: dict[str, Any], *,
                   on_kind: Callable[[str], None] | None = None) -> Report:
    """Every kind's sections in one report; seconds per kind in its parameters.

    Ctrl-C keeps the kinds that finished: the report comes back with
    ``parameters["interrupted"]`` set and only those kinds' sections (a kind's sections
    come together, so none is half there), for the caller to write and mark partial.
    """
    from foresize.evaluate.report import Report

    report = Report(f"foresize evaluation: {', '.join(kinds)} on {run.dataset}", parameters)
    timings: dict[str, float] = {}
    try:
        for kind in kinds:
            began = time.perf_counter()
            sections = KINDS[kind][0](run)
            for section in sections:
                report.add(section)
            timings[kind] = time.perf_counter() - began
            if on_kind is not None:
                on_kind(kind)
    except KeyboardInterrupt:
        report.parameters["interrupted"] = True
        report.parameters["partial"] = True
    report.parameters["seconds"] = {k: round(v, 1) for k, v in timings.items()}
    return report
