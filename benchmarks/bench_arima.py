"""ARIMA and wavelet forecasters against statsforecast AutoARIMA on GenTD26 panels.

For a seeded sample of series (``--series N``, default 40, or ``--all``) of the
``gpu_duty_cycle`` and ``memory_util`` panels, each model forecasts h=30 from
``--origins`` rolling origins (the first at 70 % of the series, then every 30 steps),
fitted on everything before the origin. foresize models refit one instance per origin
(so Arima's warm start applies, as in ``forecast.backtest``); AutoARIMA
(season_length=1) is fitted afresh at each origin, which is how statsforecast runs.

Reported per model: seconds per series (all origins, fit + predict), MASE (mean
absolute error over the horizon divided by the in-sample one-step naive MAE,
averaged over series x origins with a non-zero scale), 80 % coverage, and for the
ARIMAs the ratio of seconds per series ours / AutoARIMA. statsforecast compiles its
numba kernels on first use: it is warmed up on a tiny series before timing. BLAS is
limited to one thread for every model (tiny matrices; threaded BLAS only spins).

    python benchmarks/bench_arima.py [--series 40 | --all] [--origins 3] [--seed 0]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
import polars as pl

from foresize.forecast.arima import Arima
from foresize.forecast.metrics import naive_scale
from foresize.forecast.panel import series_arrays, to_panel
from foresize.forecast.protocol import Forecaster
from foresize.forecast.wavelet import Wavelet
from foresize.ingest.sources import open_telemetry

H = 30
MIN_LENGTH = 100  # series shorter than this have no 70 % / 30-step origin worth scoring

Scores = tuple[float, float, float]  # seconds per series, MASE, coverage 80


def load(address: str) -> pl.DataFrame:
    """One GenTD26 panel on its regular grid."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = open_telemetry([f"alibaba-gentd26:{address}"]).frame
        frame = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
        return to_panel(frame)[0]


def sample(panel: pl.DataFrame, n: int | None, seed: int) -> dict[str, np.ndarray]:
    """A seeded sample of the series at least MIN_LENGTH long (all of them when n is None)."""
    arrays = {k: v for k, v in sorted(series_arrays(panel).items()) if v.size >= MIN_LENGTH}
    keys = list(arrays)
    if n is not None and n < len(keys):
        rng = np.random.default_rng(seed)
        keys = [keys[i] for i in sorted(rng.choice(len(keys), n, replace=False))]
    return {k: arrays[k] for k in keys}


def origins_of(y: np.ndarray, count: int) -> list[int]:
    """The first origin at 70 %, then every H steps, while a future point remains."""
    first = int(0.7 * y.size)
    return [o for o in range(first, first + H * count, H) if o < y.size]


def score(
    series: dict[str, np.ndarray], origin_count: int, forecasts: dict[tuple[str, int], np.ndarray]
) -> tuple[float, float]:
    """MASE and 80 % coverage over (series, origin) pairs; ``forecasts`` maps to (mean, lo, hi)."""
    errors, covered = [], []
    for key, y in series.items():
        for origin in origins_of(y, origin_count):
            mean, lo, hi = forecasts[(key, origin)]
            future = y[origin : origin + H]
            scale = naive_scale(y[:origin])
            if scale > 0:
                errors.append(float(np.mean(np.abs(future - mean[: future.size]))) / scale)
            covered.extend((lo[: future.size] <= future) & (future <= hi[: future.size]))
    return float(np.mean(errors)), float(np.mean(covered))


def panel_of(
    series: dict[str, np.ndarray], cut: Callable[[np.ndarray], int | None]
) -> pl.DataFrame:
    """A panel of each series' first ``cut(y)`` points (series with no cut left out)."""
    parts = []
    start = pl.datetime(2026, 1, 1, time_zone="UTC")
    for key, y in series.items():
        n = cut(y)
        if n is None:
            continue
        ts = pl.datetime_range(start, start + pl.duration(seconds=57 * (n - 1)), "57s", eager=True)
        parts.append(
            pl.DataFrame({"series": [key] * n, "ts": ts.dt.cast_time_unit("us"), "y": y[:n]})
        )
    return pl.concat(parts)


def run_foresize(
    make: Callable[[], Forecaster], series: dict[str, np.ndarray], origin_count: int
) -> Scores:
    """One instance refit at each origin, as the backtest does."""
    model = make()
    forecasts: dict[tuple[str, int], np.ndarray] = {}
    elapsed = 0.0
    for k in range(origin_count):

        def cut(y: np.ndarray, k: int = k) -> int | None:
            origins = origins_of(y, origin_count)
            return origins[k] if k < len(origins) else None

        panel = panel_of(series, cut)
        start = time.perf_counter()
        out = model.fit(panel).predict(H, (80,))
        elapsed += time.perf_counter() - start
        for (key,), rows in out.group_by(["series"]):
            origin = cut(series[str(key)])
            assert origin is not None
            forecasts[(str(key), origin)] = (
                rows.sort("step").select("mean", "lo_80", "hi_80").to_numpy().T
            )
    mase, coverage = score(series, origin_count, forecasts)
    return elapsed / len(series), mase, coverage


def run_statsforecast(series: dict[str, np.ndarray], origin_count: int) -> tuple[Scores, int]:
    """AutoARIMA(season_length=1) fitted afresh at each origin; failures count and go naive."""
    from statsforecast.models import AutoARIMA

    AutoARIMA(season_length=1).fit(np.sin(np.arange(40.0))).predict(3, level=[80])  # numba JIT
    forecasts: dict[tuple[str, int], np.ndarray] = {}
    failures = 0
    elapsed = 0.0
    for key, y in series.items():
        for origin in origins_of(y, origin_count):
            start = time.perf_counter()
            try:
                out = AutoARIMA(season_length=1).fit(y[:origin]).predict(H, level=[80])
                fc = np.vstack([out["mean"], out["lo-80"], out["hi-80"]])
            except Exception:
                failures += 1
                fc = np.full((3, H), y[origin - 1])
            elapsed += time.perf_counter() - start
            forecasts[(key, origin)] = fc
    mase, coverage = score(series, origin_count, forecasts)
    return (elapsed / len(series), mase, coverage), failures


def main() -> None:
    """Parse the options, run every model on both panels, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=40)
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--origins", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    header = (
        f"{'panel':<15} {'model':<22} {'s/series':>9} {'MASE':>7} {'cov80':>6} {'ours/anchor':>12}"
    )
    print(header)
    print("-" * len(header))
    for address in ("gpu_duty_cycle", "memory_util"):
        series = sample(load(address), None if args.all else args.series, args.seed)
        anchor, failures = run_statsforecast(series, args.origins)
        rows: list[tuple[str, Scores]] = [
            ("arima (n_jobs=1)", run_foresize(Arima, series, args.origins)),
            ("arima (n_jobs=2)", run_foresize(lambda: Arima(n_jobs=2), series, args.origins)),
            ("wavelet", run_foresize(Wavelet, series, args.origins)),
            (f"sf AutoARIMA{f' ({failures} failed)' if failures else ''}", anchor),
        ]
        for name, (secs, mase, cov) in rows:
            ratio = f"{secs / anchor[0]:.2f}" if name.startswith("arima") else ""
            print(f"{address:<15} {name:<22} {secs:>9.4f} {mase:>7.3f} {cov:>6.3f} {ratio:>12}")
        print(f"{address:<15} ({len(series)} series, {args.origins} origins, h={H})")


if __name__ == "__main__":
    main()
