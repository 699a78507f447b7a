"""LLM serving on the Azure LLM traces: every replica policy tuned to 99 % SLO attainment.

Run: ``FORESIZE_DATA_MIRROR=... python benchmarks/bench_serve.py [--rate-scale 4]
[--splice 4] [--traces code,conv,lora] [--validation-only | --speed-only] [--tolerance]
[--baseline /path/to/other/checkout/src]``.

Issue #17 asks predictive or hybrid for at least 20 % fewer GPU-hours than the best
reactive policy (HPA on GPU utilisation, KV usage or requests in flight; Knative KPA;
KEDA on queue length) tuned by a sweep of its knob to the same attainment, and for at
most 1.3x the hindsight oracle's. Setup, stated in every table: Llama-2-7B (the bundled
config) in bf16 on one H100 SXM per replica, SLO TTFT 2 s and TPOT 100 ms for 99 % of
requests, start-up = 30 s container + weights at 2 GB/s (37 s). At its recorded rate a
trace needs one to three such replicas, too few for scaling to matter, so each trace is
replayed ``--rate-scale`` times faster and ``--splice``-d to about an hour again (both
shown). The first copy is a warm-up every policy runs through but nobody is scored on
(the history a deployed policy would have). Each policy's knob is swept
(``policies.POLICIES``; predictive and hybrid also over a capacity scale); a policy's
tuned row is its cheapest run at >= 99 % attainment after three bisections of each knob
toward the next cheaper swept value (the same for every knob of every policy). A trace
where even the tuned oracle is not 20 % below the best reactive policy cannot allow the
target: its ``bound`` line says so. The oracle knows each 15 s step's work, which is a
forecast exact to the policy's own step, bursts included; ``rate_oracle`` (clairvoyant
too, a bound and no policy) knows only each minute's work, the most a forecast of the
arrival *rate* can know, and its ``rate bound`` line says whether such a forecast could
meet the target, with the same bound tuned at 30 s to 5 min to show how much the
verdict rests on the minute. Where neither predictive nor hybrid is within 1.3x the
oracle (or with ``--tolerance``), the ``forecast tolerance`` table and its ``forecast
bound`` line (``_forecast_tolerance``; not with ``--speed-only``) say how exact a
per-minute rate forecast must be for 1.3x: the rate oracle's plan run from the true
per-minute rates times seeded lognormal errors of sigma 1-20 % (5 draws each), and one
minute late, each plan's capacity scale tuned as the rate oracle's, with its error
(WAPE after the best constant scale) and its GPU-hours against the oracle's; beside it
honest forecasts, made from data before each decision only and never from the
replay's repetition of its copies (the last minute's rate, an EWMA, the predictive
policy's own sizing), their errors and tuned runs; and whether 1.3x is in reach of
forecasts that exact (the first line, the true rates as the plan, must tune to the rate
oracle's own row: the check). Then the GenTD26 LoRA trace with its own service
model, its policies tuned the same way, and its ``forecast bound`` lines: the cheapest
99 % run of quantile LightGBM forecasts trained on the other folds of the series (past
and future), with and without the request trace's signals, against the 1.3x-the-oracle
target, plus the same model fitted in-sample (memorisation, not a bound); the replica
model against published measurements of real servers (``validation``: every row of the
cited tables run through the engine, ours / published, as shipped and leave-one-out;
``datasets/serve-validation.md``) with its status line; and the simulator's speed:
requests simulated per second over every sweep above, per wall-clock second and per
CPU-second of this process (on a shared machine the wall clock also counts other
processes' turns, so the CPU rate is the one comparable between runs). With
``--baseline SRC`` the same sweeps are then timed again in a child process importing
foresize from ``SRC`` (e.g. a checkout of the commit before a speed change): the speed
table shows both rates and their ratio per sweep, timed in the same run, and says
whether every sweep's rows (GPU-hours, attainment, percentiles) came out identical.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from foresize.graph.hf_config import read_hf_config
from foresize.ingest.requests import read_request_source, replay
from foresize.simulate.serve.policies import (
    CONTROL_S,
    POLICIES,
    RATE_WINDOW_S,
    sweep_values,
)
from foresize.simulate.serve.replica import ReplicaSpec, build_replica
from foresize.simulate.serve.study import (
    ServeSetup,
    Slo,
    calibrate,
    compare,
    run_policy,
    sweep_policy,
    trace_from_frame,
    tuned,
)

MODEL = Path(__file__).resolve().parents[1] / "src/foresize/graph/reference/llama-2-7b.json"
PRICE_H100 = 12.29  # recommend/prices.toml, h100_sxm on-demand
REFINE = 3  # bisections of every policy's knob past its sweep (study.sweep_policy)
SPEED_TAG = "speed-json: "  # the line a ``--speed-json`` child prints its timings on
Speed = list[tuple[str, int, float, float, str]]  # sweep, requests, wall s, CPU s, rows' hash


def _knob(row: dict[str, Any]) -> str:
    """``0.95`` or, with a capacity scale, ``0.95@0.7``."""
    scale = row["capacity_scale"]
    return f"{row['value']:g}" if scale == 1 else f"{row['value']:g}@{scale:g}"


def _bound(best: dict[str, dict[str, Any] | None], reactive: str | None) -> None:
    """The hindsight bound: no forecast, however good, needs fewer GPU-hours than the
    oracle (it knows every step's work and pays only the start-up lead), so when the tuned
    oracle is not 20 % below the best reactive policy no predictive policy can be.
    """
    oracle = best.get("oracle")
    top = best.get(reactive) if reactive else None
    if oracle is None or top is None:
        print("bound: the oracle or every reactive policy misses 99 % at every setting")
        return
    ratio = oracle["gpu_hours"] / top["gpu_hours"]
    verdict = ("the 20 % target is within reach" if ratio <= 0.8 else
               "no policy, however good its forecast, can meet the 20 % target on this replay")
    print(f"bound: the tuned oracle needs {ratio:.3f}x the best reactive's GPU-hours "
          f"({100 * (1 - ratio):.1f} % fewer): {verdict}")


RATE_WINDOWS_S = (30.0, 60.0, 120.0, 300.0)  # the rate oracle's resolutions shown


def _rate_bound(setup: ServeSetup, capacity: float, best: dict[str, dict[str, Any] | None],
                reactive: str | None) -> None:
    """The perfect-rate bound: the tuned ``rate_oracle`` (clairvoyant) knows each minute's
    work, not when in the minute it lands, which is the most a forecast of the arrival
    rate can know; when it is not 20 % below the best reactive policy, no forecast-driven
    policy of this form fed a per-minute rate forecast, however exact, can be. Its tuned
    GPU-hours at other resolutions show how much the verdict rests on the minute.
    """
    top = best.get(reactive) if reactive else None
    if top is None:
        return
    curve = []
    for window in RATE_WINDOWS_S:
        rows = (sweep_policy(replace(setup, rate_window_s=window), "rate_oracle", capacity,
                             refine=REFINE) if window != setup.rate_window_s else None)
        pick = best.get("rate_oracle") if rows is None else tuned(rows, setup.slo.attainment)
        curve.append(f"{window:g} s: " + ("--" if pick is None else
                                          f"{pick['gpu_hours']:.2f} GPU-h "
                                          f"{pick['gpu_hours'] / top['gpu_hours']:.3f}x"))
    rate = best.get("rate_oracle")
    if rate is None:
        print("rate bound: the rate oracle misses 99 % at every setting")
        return
    ratio = rate["gpu_hours"] / top["gpu_hours"]
    verdict = ("a forecast of the rate may meet the 20 % target" if ratio <= 0.8 else
               "no forecast of the per-minute rate, however exact, meets the 20 % target "
               "with this policy form")
    print(f"rate bound (clairvoyant, not deployable): the tuned rate oracle, knowing each "
          f"{setup.rate_window_s:g} s block's work, needs {ratio:.3f}x the best reactive's "
          f"GPU-hours: {verdict}; at other resolutions (tuned, x best reactive): "
          + "; ".join(curve))


TOLERANCE_SIGMAS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)  # lognormal errors of each window's rate
TOLERANCE_SEEDS = 5  # noise draws per sigma (the same draws, scaled, at every sigma)
EWMA_HALF_LIFE_S = 60.0  # the honest EWMA forecast's half-life
TOLERANCE_EXTRA_SCALES = (0.08, 0.06, 0.05, 0.04)  # below rate_oracle's sweep, for worse plans


def _scaled_wape(forecast: Any, actual: Any) -> float:
    """WAPE of ``forecast`` against ``actual`` after the one constant factor that minimises
    it (the median of actual / forecast weighted by the forecast): the error that a tuned
    capacity scale, which multiplies every step's plan alike, cannot take out."""
    import numpy as np

    ratio = actual / forecast
    order = np.argsort(ratio)
    cum = np.cumsum(forecast[order])
    factor = ratio[order][np.searchsorted(cum, 0.5 * cum[-1])]
    return float(np.abs(factor * forecast - actual).sum() / actual.sum())


def _honest_plans(truth: Any, window: int, startup: int, predictive: dict[str, Any] | None,
                  capacity: float) -> dict[str, Any]:
    """Forecasts a deployed policy could make, each at step ``n`` from the work of steps
    before ``n`` only (step 0: its own work, what every policy starts with), none of them
    looking back far enough to see the replay's copies repeat: the last ``window`` steps'
    mean (a naive per-minute rate), an EWMA of the 15 s work, and the work the tuned
    predictive policy sizes to (``replicas.scalers.Predictive`` replayed on the same
    series at its tuned level and capacity scale: its replica count x the capacity per
    replica it sized with, a quantile of the 15 s need rather than a rate, so only its
    error after scaling compares). Each is a flat forecast of every step ahead, so the
    plan at ``n`` is the forecast itself (``rate_plan``: no further look-ahead).
    """
    import numpy as np

    from foresize.simulate.replicas.scalers import ScaleContext, StepView, make_scaler
    from foresize.simulate.replicas.service import Sizer

    n_steps = truth.size
    cum = np.concatenate([[0.0], np.cumsum(truth)])
    n = np.arange(1, n_steps)
    naive = np.empty(n_steps)
    naive[0] = truth[0]
    naive[1:] = (cum[n] - cum[np.maximum(n - window, 0)]) / np.minimum(n, window)
    ewma = np.empty(n_steps)
    ewma[0] = level = truth[0]
    alpha = 1.0 - 0.5 ** (1.0 / (EWMA_HALF_LIFE_S / CONTROL_S))
    for k in range(1, n_steps):
        level += alpha * (truth[k - 1] - level)
        ewma[k] = level
    plans = {f"naive: the last {window * CONTROL_S:g} s's rate": naive,
             f"EWMA of the 15 s work, half-life {EWMA_HALF_LIFE_S:g} s": ewma}
    if predictive is not None:
        sized = capacity * predictive["capacity_scale"]
        sizer = Sizer(sized, min_replicas=1, max_replicas=1_000)
        scaler = make_scaler("predictive", level=predictive["value"])
        want = np.empty(n_steps)
        want[0] = scaler.start(ScaleContext(sizer, startup, CONTROL_S, truth))
        for k in range(1, n_steps):
            want[k] = scaler.desired(StepView(k, truth[:k], truth[:k], 1, 0))
        plans[f"predictive's, as sized (q{predictive['value']:g}@"
              f"{predictive['capacity_scale']:g})"] = want * sized
    return {k: np.maximum(v, 1e-12) for k, v in plans.items()}


def _tune_plan(setup: ServeSetup, plan: Any, capacity: float
               ) -> tuple[dict[str, Any], bool, int]:
    """``rate_plan`` ``plan`` tuned as ``sweep_policy`` tunes ``rate_oracle``: the cheapest
    capacity scale of its sweep (extended below by ``TOLERANCE_EXTRA_SCALES`` for plans
    that need more) at >= the target attainment, then ``REFINE`` bisections toward the next
    cheaper swept scale. The scale is found by bisecting the sweep instead of running all
    of it (about 8 runs instead of 15), which gives the same row as long as attainment
    falls as the scale grows: a larger scale runs at most as many replicas at every step.
    The rate oracle's own plan checks that it does (``_forecast_tolerance``'s first line).
    Returns the tuned row and True, or the safest run and False, and the runs made.
    """
    planned = replace(setup, rate_plan=plan)
    scales = [*sweep_values("rate_oracle"), *TOLERANCE_EXTRA_SCALES]  # cheapest first
    rows: dict[float, dict[str, Any]] = {}

    def meets(scale: float) -> bool:
        if scale not in rows:
            rows[scale] = run_policy(planned, "rate_oracle", scale, capacity)[0]
        return bool(rows[scale]["attainment"] >= setup.slo.attainment)

    lo, hi = -1, len(scales)  # scales[lo] misses, scales[hi] meets
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if meets(scales[mid]) else (mid, hi)
    if hi == len(scales):
        return rows[scales[-1]], False, len(rows)
    good, bad = scales[hi], scales[hi - 1] if hi else scales[hi]
    for _ in range(REFINE if hi else 0):  # the cheapest swept scale has no cheaper one
        half = 0.5 * (good + bad)
        good, bad = (half, bad) if meets(half) else (good, half)
    pick = tuned(list(rows.values()), setup.slo.attainment)
    assert pick is not None
    return pick, True, len(rows)


def _forecast_tolerance(setup: ServeSetup, capacity: float,
                        best: dict[str, dict[str, Any] | None]) -> None:
    """How exact a per-minute rate forecast must be for 1.3x the oracle's GPU-hours, and
    how exact honest forecasts are: the bound for a trace where even the rate oracle is
    barely within 1.3x.

    Each plan is run as the rate oracle's (``rate_plan``: every step sized to the plan's
    value) and its capacity scale tuned as the rate oracle's (``_tune_plan``); its row is
    the cheapest at >= 99 %. Plans: the true rate of each window, which is the rate
    oracle's own plan (the first line: its tuned row must be the rate oracle's, a check of
    the plan pipeline and of the tuning); the true rates times seeded lognormal errors
    ``exp(sigma z)``, z ~ N(0, 1) per window, the same z at every sigma, for
    ``TOLERANCE_SIGMAS`` x ``TOLERANCE_SEEDS`` draws (mean and range over the draws, and
    how many are within 1.3x); the true rates one window late (the rate oracle's plan a
    minute behind: close to a naive forecast, and a generous one, since a step's
    look-ahead may reach into a window not yet over); and the honest forecasts of
    ``_honest_plans``, made from data before their origin only and never from the copies'
    repetition (a forecaster that learnt the splice period would replay the copies
    exactly: memorisation of the replay, not a forecast, so none is shown). Errors, over
    the scored steps: the WAPE after the best constant scale (``_scaled_wape``) of each
    window's rate as forecast at the window's start (``window``) and of what each step is
    sized to (``sized``: for the true rate, its highest over the step and the start-up
    look-ahead). The verdict sets the honest forecasts' sized error against the sized
    error of the largest sigma up to which the mean of the draws is within 1.3x, and of
    the smallest sigma at which no draw is. Two cautions in reading it: an error can
    also help (a draw that happens to over-provision the bursty minutes can beat the
    true rate: on the code trace one draw at sigma 10 % tunes to 1.212x against the rate
    oracle's 1.292x), so "out of reach" is said of random errors of a size, not of every
    forecast that errs that much; and three bisections leave a tuned row a step of the
    scale from the next (code: 0.15625 reaches 99.07 % for 3.77 GPU-h, 0.1625 98.68 % for
    3.60), about 4 % of GPU-hours, more than the rate oracle's margin under 1.3x there,
    so draws at sigma 1-2 % differ mostly by that step. Deterministic; about two
    minutes on the code trace, four on conv (on one core).
    """
    import math

    import numpy as np

    from foresize.simulate.serve.policies import plan_ahead, rate_series
    from foresize.simulate.serve.study import work_series

    oracle, rate_row = best.get("oracle"), best.get("rate_oracle")
    if oracle is None or rate_row is None:
        print("forecast tolerance: the oracle or the rate oracle misses 99 % at every setting")
        return
    began, n_runs = time.perf_counter(), 0
    truth = work_series(setup)
    n_steps = truth.size
    window = max(1, round(setup.rate_window_s / CONTROL_S))
    startup = math.ceil(setup.model.startup_s / CONTROL_S)
    rate = rate_series(truth, window)
    exact = plan_ahead(rate, startup)
    blocks = rate[::window]
    first = math.ceil(setup.warmup_s / CONTROL_S)  # the first scored step
    steps = np.arange(first, n_steps)
    starts = np.arange(-(-first // window) * window, n_steps, window)  # scored windows
    limit = 1.3 * oracle["gpu_hours"]
    Run = tuple[dict[str, Any], bool]  # noqa: N806  (a row, and whether it reaches 99 %)

    def run(plan: Any) -> Run:
        nonlocal n_runs
        row, met, runs = _tune_plan(setup, plan, capacity)
        n_runs += runs
        return row, met

    def sized(plan: Any) -> float:
        return _scaled_wape(plan[steps], exact[steps])

    def at_start(forecast: Any) -> float:
        return _scaled_wape(forecast, rate[starts])

    def line(label: str, window_err: float, sized_err: float, runs: list[Run],
             note: str = "") -> float:
        """Print one plan's line; the mean ratio to the oracle (inf: a draw misses 99 %)."""
        hours = np.array([r["gpu_hours"] for r, _ in runs])
        x = hours / oracle["gpu_hours"]
        within = sum(met and h <= limit for (_, met), h in zip(runs, hours, strict=True))
        if len(runs) > 1:
            cost = (f"{hours.mean():>8.2f} ({hours.min():.2f}-{hours.max():.2f})"
                    f"{x.mean():>10.3f} ({x.min():.3f}-{x.max():.3f})")
        elif runs[0][1]:
            cost = f"{hours[0]:>8.2f}{'':>12}{x[0]:>10.3f}{'':>14}"
        else:
            cost = f"{'> ' + format(hours[0], '.2f'):>8}{'':>12}{'> ' + format(x[0], '.3f'):>10}"
            cost += f"{'':>14}"
        missed = [r for r, met in runs if not met]
        note += "" if not missed else (
            f"  (misses 99 % down to scale {missed[0]['value']:g}: "
            f"{100 * missed[0]['attainment']:.2f} % there)" if len(runs) == 1
            else f"  ({len(missed)} draws miss 99 % at every scale)")
        print(f"{label:<62}{100 * window_err:>7.1f}%{100 * sized_err:>7.1f}%{cost}"
              f"{f'{within}/{len(runs)}':>8}{note}")
        return float(x.mean()) if not missed else math.inf

    print(f"forecast tolerance: each plan run as the rate oracle's and its capacity scale "
          f"tuned the same way, against 1.3x the oracle = {limit:.2f} GPU-h; error = WAPE "
          "after the best constant scale, over the scored copies, of each window's rate as "
          "forecast at its start and of what each step is sized to")
    print(f"{'plan':<62}{'window':>8}{'sized':>8}{'GPU-h (range)':>20}"
          f"{'x oracle (range)':>24}{'<= 1.3x':>8}")
    check = run(exact)
    same = "identical to" if check == (rate_row, True) else "DIFFERS from"
    line(f"the true rate (check: {same} the tuned rate oracle)",
         at_start(blocks[starts // window]), sized(exact), [check])
    curve: list[tuple[float, float, float, int]] = []  # sigma, sized error, mean x, within
    draws = [np.random.default_rng(seed).standard_normal(blocks.size)
             for seed in range(TOLERANCE_SEEDS)]
    for sigma in (s for s in TOLERANCE_SIGMAS if s > 0):
        runs, sized_errs, start_errs = [], [], []
        for z in draws:
            noisy = blocks * np.exp(sigma * z)
            plan = plan_ahead(np.repeat(noisy, window)[:n_steps], startup)
            runs.append(run(plan))
            sized_errs.append(sized(plan))
            start_errs.append(at_start(noisy[starts // window]))
        mean_x = line(f"the true rate x lognormal error, sigma {100 * sigma:g} %",
                      float(np.mean(start_errs)), float(np.mean(sized_errs)), runs)
        within = sum(met and r["gpu_hours"] <= limit for r, met in runs)
        curve.append((sigma, float(np.mean(sized_errs)), mean_x, within))
    late_blocks = np.concatenate([blocks[:1], blocks[:-1]])
    late = plan_ahead(np.repeat(late_blocks, window)[:n_steps], startup)
    line("the true rate one window late", at_start(late_blocks[starts // window]),
         sized(late), [run(late)])
    honest: list[tuple[str, float, float]] = []  # name, sized error, x oracle
    pred = best.get("predictive")
    for name, plan in _honest_plans(truth, window, startup, pred, capacity).items():
        own = name.startswith("predictive's")
        got = (pred, True) if own and pred is not None else run(plan)
        mean_x = line("honest: " + name, at_start(plan[starts]), sized(plan), [got],
                      "  (its own tuned run above)" if own else "")
        honest.append((name, sized(plan), mean_x))
    ok: list[tuple[float, float, float, int]] = []  # the sigmas up to the first mean > 1.3x
    for c in curve:
        if c[2] > 1.3:
            break
        ok.append(c)
    out = next((c for c in curve if c[3] == 0), None)
    name, err, _ = min(honest, key=lambda h: h[1])
    best_x = min(h[2] for h in honest)
    tolerance = (f"1.3x needs a sized error <= {100 * ok[-1][1]:.1f} % (sigma "
                 f"{100 * ok[-1][0]:g} %: {ok[-1][2]:.3f}x on average, {ok[-1][3]}/"
                 f"{TOLERANCE_SEEDS} draws within)" if ok else
                 f"no error of sigma >= {100 * curve[0][0]:g} % is within 1.3x on average")
    shown_x = f"{best_x:.3f}x" if math.isfinite(best_x) else "none reaching 99 %"
    where = (f"the best honest forecast here: {100 * err:.1f} % ({name}); the cheapest honest "
             f"tuned run {shown_x} the oracle")
    if out is not None and err >= out[1]:
        verdict = (f"out of reach for any forecast of the per-minute rate with random "
                   f"errors >= {100 * out[1]:.1f} % (sigma {100 * out[0]:g} %: no draw within "
                   f"1.3x); " + where)
    elif ok and err <= ok[-1][1]:
        verdict = f"reachable: {where}, within the tolerance"
    else:
        verdict = (f"marginal: {where}, between the tolerance and the error at which no "
                   "draw is within 1.3x")
    print(f"forecast bound: {tolerance}; {verdict} ({n_runs} runs, "
          f"{time.perf_counter() - began:.0f} s)")


LORA_HPA = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
LORA_LEVELS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
LORA_SCALES = (1.0, 0.8, 0.6)  # capacity scales of the forecast-driven policies


LORA_BOUND_LEVELS = (0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)  # the k-fold quantile levels
LORA_BOUND_HOLDS = (0, 1)  # scale-down holds of the planned peaks


def _window_labels(values: Any, startup: int) -> Any:
    """Row ``t``: the peak demand of steps ``t .. t + startup`` (what the oracle runs at
    ``t``: a replica asked for now is ready at ``t + startup`` and one removed now is gone
    now), NaN where the window passes the end."""
    import numpy as np

    out = np.full(values.size, np.nan)
    last = values.size - startup
    out[:last] = np.max([values[k:k + last] for k in range(startup + 1)], axis=0)
    return out


def _lora_forecast_bound(series: Any, cfg: Any, evaluate: Any, oracle_hours: float) -> None:
    """How cheap any forecast of the LoRA demand could make 99 % attainment: a generous
    bound, run through the same ``evaluate`` (simulate + score) as the policies.

    The forecasts are ``bench_autoscale_bound.py``'s quantile LightGBM (seeded, one
    thread): features known at the start of each step (lags 1-5, EWMAs with half-lives
    2-240 steps, window maxima and busy shares over 10-120 steps, time of day, the level
    at the same time the day before) and, in a second fit, the request trace's signals
    (requests in flight at the decision instant, arrivals in the last step and its last
    15 s). Each fifth of the series is predicted by a model trained on the *other* four
    fifths, past and future (a 1 h guard gap each side): it never sees the labels it is
    scored on, but it learns from far more of the series, and from its future, than any
    online policy can, so what it cannot reach a deployable forecast of these features
    will not reach either. Its target is what the oracle runs: the peak demand of the
    next ``start-up + 1`` steps (a replica asked for now is ready ``start-up`` steps on;
    one removed now is gone now), run by ``Planned`` with a scale-down hold of 0 or 1
    steps, over the quantile levels ``LORA_BOUND_LEVELS`` and the policies' capacity
    scales (the plan divided by the scale, the scaler sized at it). Per hold and scale the
    levels stop at the first one reaching 99 %: a higher quantile plans more and costs
    more. (``bench_autoscale_bound``'s target, the demand ``start-up`` steps ahead with
    holds 0-2, cost more at every 99 % setting on this trace: 1,988 against 1,939
    replica-h on the demand features.) The cheapest run at >= 99 % is the bound; the
    best attainment of the runs within 1.3x the oracle's replica-hours shows the same
    from the other side. The labels themselves as the plan check the pipeline: a perfect
    forecast costs what the oracle does. The same LightGBM trained and scored on the
    whole series (memorisation, not a bound) shows how far an in-sample fit misleads.
    Deterministic; about two minutes on one core.
    """
    import numpy as np

    from bench_autoscale_bound import (
        Planned,
        features,
        insample_quantiles,
        kfold_quantiles,
        request_signals,
    )

    began = time.perf_counter()
    startup = cfg.startup
    y = _window_labels(series.values / cfg.capacity, startup)
    limit = 1.3 * oracle_hours
    hours, attainment = evaluate(Planned(np.nan_to_num(y, nan=float(np.nanmax(y))), 0), 1.0)
    print(f"forecast bound check: the labels as the plan {hours:,.0f} replica-h "
          f"{100 * attainment:.2f} % = {hours / oracle_hours:.3f}x the oracle (a perfect "
          "forecast costs what the oracle does)")
    x = features(series, cfg.capacity)
    fits = [("forecast bound", "k-fold LightGBM, demand features", kfold_quantiles, x),
            ("forecast bound", "k-fold LightGBM + request signals", kfold_quantiles,
             np.column_stack([x, request_signals(series)])),
            ("memorisation, not a bound", "in-sample LightGBM, demand features",
             insample_quantiles, x)]
    n_fits = n_runs = 0
    for kind, label, fit, columns in fits:
        runs: list[tuple[str, float, float]] = []
        done: set[tuple[float, int]] = set()  # (scale, hold) that reached 99 %
        for level in LORA_BOUND_LEVELS:
            if len(done) == len(LORA_SCALES) * len(LORA_BOUND_HOLDS):
                break
            plan = fit(columns, y, level)
            n_fits += 1
            for scale in LORA_SCALES:
                for hold in LORA_BOUND_HOLDS:
                    if (scale, hold) in done:
                        continue
                    hours, attainment = evaluate(Planned(plan / scale, hold), scale)
                    n_runs += 1
                    setting = f"q{level:g} hold {hold}" + ("" if scale == 1 else f" @{scale:g}")
                    runs.append((setting, hours, attainment))
                    if attainment >= 0.99:
                        done.add((scale, hold))
        meeting = [r for r in runs if r[2] >= 0.99]
        cheap = [r[2] for r in runs if r[1] <= limit]
        within = (f"the best of its runs within 1.3x the oracle's replica-h serves "
                  f"{100 * max(cheap):.2f} %" if cheap else "none of its runs is within 1.3x")
        if not meeting:
            print(f"{kind} ({label}): no run reaches 99 % ({len(runs)} runs); {within}")
            continue
        setting, hours, attainment = min(meeting, key=lambda r: r[1])
        ratio = hours / oracle_hours
        verdict = ("" if kind != "forecast bound" else
                   ": out of reach for any forecast of these features" if ratio > 1.3 else
                   ": reachable")
        print(f"{kind} ({label}): {setting} {hours:,.0f} replica-h {100 * attainment:.2f} % "
              f"= {ratio:.2f}x the oracle (target <= 1.3){verdict}; {within} "
              f"({len(runs)} runs)")
    print(f"forecast bound: {n_fits} LightGBM fits, {n_runs} runs, "
          f"{time.perf_counter() - began:.0f} s")


def lora() -> None:
    """The GenTD26 LoRA trace with its own service model (image generation, not tokens).

    Its requests carry an execution time, not token counts, so the token-level replica
    does not apply: the service is ``simulate.replicas`` on the per-minute request
    concurrency, one request per replica (``bench_autoscale.py``'s LoRA setup, start-up 2
    steps), now with the admission queue: demand beyond the ready replicas waits, and
    what waits past its minute is unserved. Attainment = 1 - unserved; each policy's knob
    is swept (the forecast-driven ones also over a capacity scale, as above) and its
    cheapest setting at >= 99 % kept. Then the ``forecast bound`` (``_lora_forecast_bound``):
    the cheapest 99 % run of generous k-fold quantile forecasts through the same
    simulate + score, whether it is within 1.3x the oracle, and the best attainment of its
    runs within 1.3x; and the in-sample (memorising) fit the same way, not a bound.
    """
    import numpy as np

    from foresize.evaluate.autoscaling import service
    from foresize.ingest.sources import ReadOptions
    from foresize.simulate.replicas.demand import open_demand
    from foresize.simulate.replicas.run import score, simulate
    from foresize.simulate.replicas.scalers import make_scaler

    series = open_demand("alibaba-gentd26:lora", ReadOptions())
    cfg = service(series, 1.0, 2)
    print(f"\n## gentd26:lora ({series.values.size:,} steps of {series.step_s:g} s, peak "
          f"{series.values.max():g} concurrent requests), 1 request per replica, start-up 2 "
          "steps, admission queue: unserved = waited past its minute; target 99 % served")
    sweeps = {"hpa": [("target", v, 1.0) for v in LORA_HPA],
              "predictive": [("level", v, c) for c in LORA_SCALES for v in LORA_LEVELS],
              "hybrid": [("level", v, c) for c in LORA_SCALES for v in LORA_LEVELS],
              "oracle": [("", 0.0, 1.0)]}
    best: dict[str, dict[str, Any] | None] = {}
    sizer = cfg.sizer()

    def evaluate(scaler: Any, scale: float) -> tuple[float, float]:
        """(replica-hours, attainment) of one run: the scaler sizes with ``scale`` x the
        capacity; the service runs at the true one."""
        run = simulate(series.values, scaler, replace(cfg, capacity=scale),
                       offered=series.offered)
        run.throughput = sizer.throughput(run.ready)
        run.served = np.minimum(run.demand, run.throughput)
        row = score(run, cfg)
        return row["replica_hours"], 1 - row["unserved_frac"]

    for name, grid in sweeps.items():
        rows = []
        for knob, value, scale in grid:
            hours, attainment = evaluate(make_scaler(name, **({knob: value} if knob else {})),
                                         scale)
            rows.append({"value": value if scale == 1 else f"{value:g}@{scale:g}",
                         "hours": hours, "attainment": attainment})
        meeting = [r for r in rows if r["attainment"] >= 0.99]
        best[name] = min(meeting, key=lambda r: r["hours"]) if meeting else None
        curve = "  ".join(f"{r['value']}: {r['hours']:.0f}/{100 * r['attainment']:.2f}"
                          for r in rows)
        pick = best[name]
        shown = "--" if pick is None else f"{pick['value']} {pick['hours']:.0f} replica-h " \
            f"{100 * pick['attainment']:.2f} %"
        print(f"{name:<11}{shown:>34}   {curve}")
    hpa, oracle = best["hpa"], best["oracle"]
    for name in ("predictive", "hybrid"):
        row = best[name]
        if row is None or hpa is None or oracle is None:
            print(f"{name}: no swept level (or no reference) reaches 99 %")
            continue
        print(f"{name}: {row['hours'] / hpa['hours']:.3f}x the tuned HPA (target <= 0.8), "
              f"{row['hours'] / oracle['hours']:.3f}x the oracle (target <= 1.3)")
    if hpa is not None and oracle is not None:
        ratio = oracle["hours"] / hpa["hours"]
        print(f"bound: the oracle needs {ratio:.3f}x the tuned HPA's replica-hours"
              + ("" if ratio <= 0.8 else ": no policy can meet the 20 % target here"))
    if series.step_s >= RATE_WINDOW_S:
        print(f"rate bound: this series' {series.step_s:g} s step is already the rate "
              f"oracle's {RATE_WINDOW_S:g} s resolution, so the oracle above is the "
              "perfect-rate bound")
    if oracle is not None:
        _lora_forecast_bound(series, cfg, evaluate, oracle["hours"])


def _pct(x: float | None) -> str:
    return "--" if x is None else f"{100 * x:+.0f}%"


def _num(x: float) -> str:
    """Four significant digits, thousands without an exponent."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def validation() -> None:
    """The replica model against published tables (``simulate.serve.validation``).

    Every row is run through ``ServeEngine`` here: as shipped (``ReplicaSpec`` defaults,
    fitted to none of these rows) and, leave-one-out, with the constants (overlap,
    FLOP/s and bandwidth efficiency, per-iteration overhead) grid-searched on one
    (model, GPU) pair alone and reported on the others. Target (issue #17): TTFT and
    throughput within 20 % for at least two pairs; TTFT is scored on an idle replica
    only (under load it is the framework's prefill scheduler, shown as diagnostics).
    """
    from foresize.simulate.serve import validation as val

    print("\n## validation against published measurements (datasets/serve-validation.md)")
    for src in val.SOURCES.values():
        print(f"{src.key}: {src.framework}; {src.where}; load: {src.load}")
    pair_names = val.pairs()
    shipped = val.compare({})
    folds = {pair: val.leave_one_out(pair) for pair in pair_names}
    fold_rows = {pair: val.compare(folds[pair]) for pair in pair_names}
    tp1 = [p for p in pair_names if p.endswith("x1")]
    # the columns shown per row: as shipped, then a fold tuned on each TP-1 pair
    print("synthetic fixed-length requests, as each source ran them; ratio = ours / "
          "published - 1; * = in-sample (the fold's tuning pair), k = our KV cache bound")
    head = f"{'pair':<27}{'row':<41}{'published':>10}{'shipped':>17}"
    head += "".join(f"{'fold ' + p.split(' @')[0]:>22}" for p in tp1)
    for metric, pub_key, err_key, unit in (("throughput (output tok/s)", "throughput_pub",
                                            "throughput_err", 1.0),
                                           ("TTFT (ms)", "ttft_pub_s", "ttft_err", 1e3)):
        print(f"\n{metric}")
        print(head)
        value_key = pub_key.replace("_pub", "")
        for i, row in enumerate(shipped):
            if row[pub_key] is None:
                continue
            kind = "" if metric.startswith("throughput") or row["ttft_scored"] else " (load)"
            line = (f"{row['pair']:<27}{row['label'] + kind:<41}"
                    f"{_num(row[pub_key] * unit):>10}"
                    f"{_num(row[value_key] * unit):>10} {_pct(row[err_key]):>5}"
                    f"{'k' if row['kv_bound'] else ' '}")
            for p in tp1:
                other = fold_rows[p][i]
                star = "*" if other["pair"] == p else " "
                line += (f"{_num(other[value_key] * unit):>14} {_pct(other[err_key]):>5}"
                         f"{star}{'k' if other['kv_bound'] else ' '}")
            print(line)
    print("\nper pair: mean |error| (rows within 20 % / rows, worst); meets = throughput "
          "and idle TTFT mean |error| <= 20 %")

    def show(label: str, results: list[dict[str, Any]], tuned_on: str | None) -> None:
        print(label)
        for pair, s in val.summarize(results).items():
            parts = []
            for key in ("throughput", "ttft_idle", "ttft_loaded"):
                st = s[key]
                parts.append(f"{key} {100 * st['mean_abs']:.1f}% ({st['within']}/{st['n']}, "
                             f"worst {100 * st['max_abs']:.0f}%)")
            tag = " [tuning pair, in-sample]" if pair == tuned_on else ""
            verdict = "meets" if s["meets"] else "misses"
            print(f"  {pair:<27}{verdict:<7}{'; '.join(parts)}{tag}")

    show("as shipped (ReplicaSpec defaults, no fit):", shipped, None)
    for pair in pair_names:
        knobs = ", ".join(f"{k}={v:g}" for k, v in folds[pair].items())
        show(f"leave-one-out, constants chosen on {pair} ({knobs}):", fold_rows[pair], pair)
    sums = {q: val.summarize(fold_rows[q]) for q in pair_names}
    short = {p: p.split(" @")[0] for p in pair_names}
    verdicts = []
    for p in pair_names:
        ok = [short[q] for q in pair_names if q != p and sums[q][p]["meets"]]
        miss = [short[q] for q in pair_names if q != p and not sums[q][p]["meets"]]
        verdicts.append(f"{short[p]} " + ", ".join(
            ([f"meets with {'/'.join(ok)}'s"] if ok else [])
            + ([f"misses with {'/'.join(miss)}'s"] if miss else [])))
    as_shipped = [p for p, s in val.summarize(shipped).items() if s["meets"]]
    n_out = sum(any(q != p and sums[q][p]["meets"] for q in pair_names) for p in pair_names)
    print(f"validation status: as shipped {len(as_shipped)} of {len(pair_names)} pairs meet "
          f"the 20 % target; out of sample (constants chosen on another pair) {n_out} of "
          f"{len(pair_names)} (target >= 2): " + "; ".join(verdicts))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate-scale", type=float, default=4.0)
    parser.add_argument("--splice", type=int, default=4)
    parser.add_argument("--traces", default="code,conv,lora")
    parser.add_argument("--validation-only", action="store_true",
                        help="print only the validation against published measurements")
    parser.add_argument("--speed-only", action="store_true",
                        help="the Azure traces' sweeps and the simulator's speed (no LoRA "
                        "trace, no validation): the speed target's check in minutes")
    parser.add_argument("--baseline", metavar="SRC",
                        help="then time the same sweeps importing foresize from SRC")
    parser.add_argument("--tolerance", action="store_true",
                        help="the forecast-error tolerance on every Azure trace, also where "
                        "predictive or hybrid is already within 1.3x the oracle")
    parser.add_argument("--speed-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.validation_only:
        validation()
        return
    names = args.traces.split(",")
    model = build_replica(read_hf_config(MODEL), ReplicaSpec(device="h100_sxm"),
                          model="llama-2-7b")
    slo = Slo(2.0, 0.1, 0.99)
    speed: Speed = []
    for name in (n for n in names if n != "lora"):
        frame, _ = read_request_source(f"azure-llm:{name}")
        frame, info = replay(frame, rate_scale=args.rate_scale, splice=args.splice)
        trace = trace_from_frame(frame)
        warmup = float(trace.arrival_s[-1]) / args.splice if args.splice > 1 else 0.0
        setup = ServeSetup(model, trace, slo, info, PRICE_H100, warmup_s=warmup)
        capacity = calibrate(setup)
        print(f"\n## azure-llm:{name} ({info.describe()}: {info.n_requests:,} requests over "
              f"{info.duration_s / 60:.0f} min), llama-2-7b bf16 on 1 x H100, SLO TTFT 2 s / "
              f"TPOT 100 ms at 99 %; calibrated capacity {capacity:.3f} work/s per replica; "
              f"the first {warmup / 60:.0f} min (one copy) are the warm-up every policy "
              "learns from, run but not scored")
        best = {}
        print(f"{'policy':<13}{'knob':>18}{'value':>17}{'GPU-h':>8}{'attain':>8}"
              f"{'TTFT p99':>9}{'TPOT p99':>9}{'cold':>6}   sweep (value: GPU-h / attainment)")
        for policy in POLICIES.names():
            start, cpu = time.perf_counter(), time.process_time()
            rows = sweep_policy(setup, policy, capacity, refine=REFINE)
            speed.append((f"{name}:{policy}", len(rows) * setup.trace.n,
                          time.perf_counter() - start, time.process_time() - cpu,
                          hashlib.sha256(repr(rows).encode()).hexdigest()[:16]))
            best[policy] = pick = tuned(rows, slo.attainment)
            curve = "  ".join(f"{_knob(r)}: {r['gpu_hours']:.2f}/{100 * r['attainment']:.1f}"
                              for r in rows)
            if pick is None:
                print(f"{policy:<13}{POLICIES.get(policy).knob:>18}{'--':>17}{'--':>8}"
                      f"{'<99 %':>8}{'':>9}{'':>9}{'':>6}   {curve}")
                continue
            print(f"{policy:<13}{pick['knob']:>18}{_knob(pick):>17}{pick['gpu_hours']:>8.2f}"
                  f"{100 * pick['attainment']:>7.2f}%{pick['ttft_p99_s']:>8.2f}s"
                  f"{pick['tpot_p99_ms']:>7.0f}ms{pick['cold_starts']:>6}   {curve}")
        result = compare(best)
        print(f"best reactive: {result['best_reactive']}")
        _bound(best, result["best_reactive"])
        _rate_bound(setup, capacity, best, result["best_reactive"])
        for policy in ("predictive", "hybrid"):
            if policy in result:
                r = result[policy]
                vs_reactive = "no reactive policy reaches 99 %" if r["vs_best_reactive"] \
                    is None else (f"{r['vs_best_reactive']:.3f}x the best reactive "
                                  f"({100 * r['saving_vs_best_reactive']:.1f} % fewer "
                                  "GPU-hours; target >= 20 %)")
                vs_oracle = "the oracle misses 99 %" if r["vs_oracle"] is None \
                    else f"{r['vs_oracle']:.3f}x the oracle (target <= 1.3)"
                rate = best.get("rate_oracle")
                vs_rate = "" if rate is None else \
                    f", {best[policy]['gpu_hours'] / rate['gpu_hours']:.3f}x the rate oracle"
                print(f"{policy}: {vs_reactive}, {vs_oracle}{vs_rate}")
            else:
                print(f"{policy}: no swept level reaches 99 %")
        if args.speed_only or args.speed_json:
            continue
        within = [(p, result[p]["vs_oracle"]) for p in ("predictive", "hybrid")
                  if p in result and result[p]["vs_oracle"] is not None
                  and result[p]["vs_oracle"] <= 1.3]
        if within and not args.tolerance:
            print(f"forecast tolerance: not run, {within[0][0]} is within 1.3x the oracle "
                  f"({within[0][1]:.3f}x); --tolerance runs it")
        else:
            _forecast_tolerance(setup, capacity, best)
    if args.speed_json:
        import foresize

        print(SPEED_TAG + json.dumps({"source": foresize.__file__, "speed": speed}))
        return
    if not args.speed_only:
        if "lora" in names:
            lora()
        validation()
    load = os.getloadavg()[0]
    _speed(speed, load, _baseline(args) if args.baseline else None)


def _baseline(args: argparse.Namespace) -> tuple[Speed, float, str]:
    """The same sweeps timed in a child importing foresize from ``args.baseline``, the load
    average after them (only the child's own CPU time is compared) and the file it imported.
    """
    traces = ",".join(n for n in args.traces.split(",") if n != "lora")
    env = {**os.environ, "PYTHONPATH": args.baseline}
    out = subprocess.run([sys.executable, __file__, "--speed-json", "--traces", traces,
                          "--rate-scale", str(args.rate_scale), "--splice", str(args.splice)],
                         env=env, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith(SPEED_TAG))
    got = json.loads(line[len(SPEED_TAG):])
    return [tuple(x) for x in got["speed"]], os.getloadavg()[0], got["source"]


def _speed(speed: Speed, load: float, base: tuple[Speed, float, str] | None) -> None:
    """Requests simulated per wall-clock and per CPU-second, per policy and over all runs;
    with a baseline, its CPU rate and the ratio per sweep (the CPU rate is the comparable
    one on a shared machine) and whether its rows were identical.
    """
    print("\n## simulator speed (requests simulated per second; target >= 100k)")
    if base is not None:
        print(f"baseline: the same sweeps importing {base[2]}, timed after these in a child "
              "process")
    before = {x[0]: x for x in base[0]} if base else {}
    print(f"{'sweep':<24}{'wall req/s':>12}{'CPU req/s':>12}"
          + (f"{'baseline CPU':>14}{'ratio':>7}  rows" if base else ""))
    for label, n, wall, cpu, rows in speed:
        line = f"{label:<24}{n / wall:>12,.0f}{n / cpu:>12,.0f}"
        if label in before:
            _, n0, _, cpu0, rows0 = before[label]
            line += (f"{n0 / cpu0:>14,.0f}{(n / cpu) / (n0 / cpu0):>6.2f}x  "
                     f"{'identical' if rows == rows0 else 'DIFFER'}")
        print(line)
    total_n = sum(x[1] for x in speed)
    wall, cpu = sum(x[2] for x in speed), sum(x[3] for x in speed)
    if not total_n:
        return
    print(f"{'all runs':<24}{total_n / wall:>12,.0f}{total_n / cpu:>12,.0f}   ({total_n:,} "
          f"requests; load average {load:.1f} on {os.cpu_count()} cores)")
    if base:
        n0 = sum(x[1] for x in base[0])
        wall0, cpu0 = sum(x[2] for x in base[0]), sum(x[3] for x in base[0])
        same = all(label in before and before[label][4] == rows
                   for label, _, _, _, rows in speed)
        print(f"{'baseline':<24}{n0 / wall0:>12,.0f}{n0 / cpu0:>12,.0f}   (load average "
              f"{base[1]:.1f}); now {(total_n / cpu) / (n0 / cpu0):.2f}x per CPU-second, "
              f"{(total_n / wall) / (n0 / wall0):.2f}x per wall second; every sweep's rows "
              + ("identical" if same else "NOT identical"))


if __name__ == "__main__":
    main()
