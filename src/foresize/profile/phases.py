"""Phases of a workload: idle, level regimes and spikes, found in its telemetry.

AI workloads switch between phases (idle and busy serving, data loading, training,
evaluation, checkpointing, start-up and steady state), and each phase has its own
demand. Live sampling, forecasting and the recommender all need the same labelling,
so it lives here, in ``profile``, below ``forecast`` and ``recommend``.

``detect_phases`` labels every sample of every series (workload x metric) with a
``phase`` and a change-point ``segment``; ``phase_summary`` turns the labels into what
a forecaster or a right-sizer needs: per phase its share of time, its visits and
dwell times, its demand distribution and where it goes next.

How ``method="changepoint"`` labels one series, in time order (``min_dwell`` = d):

1. **Idle.** A sample is idle at or below its metric's ``idle_at_or_below`` in
   ``core.schemas.METRICS`` (or at zero, up to rounding, for other metrics), the rule
   ``profile_telemetry`` uses for ``idle_frac``.
2. **Idle and active stretches.** A stretch shorter than d samples is not a phase, so
   the idle mask is smoothed by a running majority over 2d - 1 samples, repeated until
   it no longer changes (a median-filter root); runs still shorter than d (at the ends,
   or in an alternating pattern, which is a root) are flipped into their neighbours,
   shortest first. A pause of a sample or two in a busy stretch is busy; a lone burst
   in an idle stretch stays an excursion from idle (step 6). This is where the labels
   depart from the per-sample threshold (on GenTD26 duty cycles they agree on 94 % of
   samples): dwell times then measure busy and idle periods, not per-minute flicker.
3. **Level.** The running median over the same 2d - 1 samples is the local level: it
   follows every step that lasts d samples or more and removes shorter excursions.
4. **Change points.** PELT (``ruptures``; linear-kernel cost, i.e. mean shifts,
   compiled) splits the level into segments of at least d samples, with a BIC penalty
   of ``2 ln(n)`` noise variances per change point, within each active stretch (idle
   ones are one level, near zero). The noise is the robust scale of
   the differences between consecutive active samples (MAD / sqrt 2), which level
   shifts barely move and idle zeros do not shrink; when most of those differences are
   exactly zero (quantised or intermittent series) the RMS of all but the largest 5 %
   stands in. Series longer than ``MAX_POINTS`` are segmented on block means (the
   penalty divided by the block size to match), each change point is refined to the
   best sample within one block, and change points that no longer pay the penalty at
   full resolution are dropped, so the cost stays bounded: PELT is quadratic when
   there are no change points to prune on. Segments also end wherever the idle state
   of step 2 switches, so a segment is wholly idle or wholly active.
5. **Regimes.** The mean levels of the active segments are clustered by exact weighted
   1-D k-means (dynamic programming; weights = samples). k is the largest k <=
   ``max_regimes`` whose adjacent regimes are all *distinct*: centres further apart
   than twice the larger within-regime standard deviation of the level (a mixture of
   two equal normals is bimodal only beyond that), and than ``MIN_RELATIVE_GAP`` of
   the higher centre (so a level drifting between 88 and 92 % stays one regime), and
   each regime holding at least d samples. Levels that form a continuum, as GenTD26's
   serving duty cycles mostly do, stay one ``busy`` regime.
6. **Spikes.** A run of fewer than d non-idle samples above the local level by more
   than ``SPIKE_Z`` times its segment's noise (MAD of the segment's differences /
   sqrt 2) and by more than ``MIN_RELATIVE_GAP`` of the level is a ``spike``. A
   segment idling at exactly zero has no noise, so any activity there is a spike;
   where idle readings are noisy, blips just above the threshold stay idle.

``method="threshold"`` is the simple labelling: idle per sample by the threshold,
everything else ``busy``, one segment per run. ``method="auto"`` is ``changepoint``;
series shorter than ``2 * min_dwell`` samples (too short to hold two phases) are
labelled by ``threshold`` in every method.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import polars as pl

from foresize.core.errors import InputError
from foresize.core.metrics import metric_info
from foresize.core.schemas import GAP_FACTOR, SERIES_KEYS, TELEMETRY, check_telemetry

Method = Literal["auto", "threshold", "changepoint"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

IDLE = "idle"
SPIKE = "spike"
BUSY = "busy"
#: Every label ``detect_phases`` writes, in this order in ``phase_summary``.
PHASES = ("idle", "low", "mid", "high", "busy", "spike")
#: Names of the active regimes, lowest first, by how many were found.
REGIME_NAMES: dict[int, tuple[str, ...]] = {
    1: ("busy",),
    2: ("low", "high"),
    3: ("low", "mid", "high"),
}
MAX_REGIMES = max(REGIME_NAMES)
MAX_POINTS = 4096  # longer series are segmented on block means: PELT stays ~10 ms
MAX_CLUSTER_POINTS = 512  # more segment levels are pooled into this many sorted bins
SPIKE_Z = 4.0  # robust z-score of a spike; Gaussian noise passes it 3e-5 of the time
MIN_RELATIVE_GAP = 0.1  # regimes and spikes must stand this far above the level below
TRIM = 0.05  # share of the largest differences left out of the fallback noise scale
MAD_TO_SD = 1.4826  # the MAD of normal noise times this is its standard deviation
MAX_SMOOTHING_PASSES = 32

_CODE = {name: i for i, name in enumerate(PHASES)}
_IDLE, _SPIKE, _BUSY = _CODE[IDLE], _CODE[SPIKE], _CODE[BUSY]

SUMMARY_SCHEMA = pl.Schema(
    [
        ("workload", pl.String()),
        ("metric", pl.String()),
        ("phase", pl.String()),
        ("n_samples", pl.Int64()),
        ("time_s", pl.Float64()),
        ("time_share", pl.Float64()),
        ("n_visits", pl.Int64()),
        ("mean_dwell_s", pl.Float64()),
        ("max_dwell_s", pl.Float64()),
        ("mean", pl.Float64()),
        ("p50", pl.Float64()),
        ("p95", pl.Float64()),
        ("p99", pl.Float64()),
        ("max", pl.Float64()),
        ("p_stay", pl.Float64()),
        *((f"p_to_{name}", pl.Float64()) for name in PHASES),
    ]
)


TRANSITIONS_SCHEMA = pl.Schema(
    [
        ("workload", pl.String()),
        ("metric", pl.String()),
        ("phase", pl.String()),
        ("next_phase", pl.String()),
        ("n_transitions", pl.Int64()),
        ("p", pl.Float64()),
    ]
)


def _check(name: str, must: str, got: object, *, ok: bool) -> None:
    if not ok:
        raise InputError(
            f"The {name!r} parameter of detect_phases must be {must}. Got {got!r} instead."
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_canonical(frame: pl.DataFrame, *, source: str) -> None:
    """Keys and values must be present and finite: the input is canonical telemetry."""
    check_telemetry(frame, source=source)
    nulls = frame.select(pl.col(*TELEMETRY.names()).null_count()).row(0, named=True)
    for column, count in nulls.items():
        if count:
            raise InputError(
                f"{source}: column {column!r} has {count} null value(s); phases need "
                "canonical telemetry",
                hint="run foresize.ingest.validate.canonicalize (or a read_* function) first",
            )
    bad = frame.select((~pl.col("value").is_finite()).sum()).item()
    if bad:
        raise InputError(
            f"{source}: column 'value' has {bad} NaN or infinite value(s); phases need "
            "canonical telemetry",
            hint="run foresize.ingest.validate.canonicalize (or a read_* function) first",
        )


def idle_mask(values: FloatArray, metric: str) -> BoolArray:
    """Samples at or below ``metric``'s idle threshold, or at zero up to rounding.

    The threshold is ``METRICS[metric].idle_at_or_below`` (0 for metrics without
    one); "up to rounding" is 1e-9 of the series' largest magnitude. Metrics that may be
    negative (custom ones) are idle only near zero.
    """
    info = metric_info(metric)
    tolerance = 1e-9 * float(np.max(np.abs(values))) if values.size else 0.0
    if info.nonnegative:
        mask: BoolArray = values <= info.idle_at_or_below + tolerance
    else:
        mask = np.abs(values) <= info.idle_at_or_below + tolerance
    return mask


def detect_phases(
    telemetry: pl.DataFrame,
    *,
    method: Method = "auto",
    min_dwell: int = 3,
    max_regimes: int = 3,
    penalty: float | None = None,
) -> pl.DataFrame:
    """Label every sample with its phase and its change-point segment.

    ``telemetry`` is canonical (``core.schemas.TELEMETRY``: no nulls, finite values;
    the ``read_*`` functions and ``canonicalize`` produce it) and may hold many series;
    each workload x metric is labelled on its own, in ts order. Returns the input rows,
    in the input order, with two columns set (an existing ``phase`` is replaced, so
    rename it first to keep it):

    * ``phase`` (String): ``idle``; the active regimes ranked by level, ``busy`` when
      there is one, ``low``/``high`` for two, ``low``/``mid``/``high`` for three; and
      ``spike`` for excursions shorter than ``min_dwell`` samples well above the local
      level. ``threshold`` writes ``idle`` and ``busy`` only.
    * ``segment`` (Int64): the segment within its series, 0, 1, ... in time order. For
      ``changepoint`` a segment is wholly idle or wholly active and lasts at least
      ``min_dwell`` samples (unless the series is shorter than ``2 * min_dwell``); for
      ``threshold`` it is a run of one label.

    ``method`` is ``changepoint``, ``threshold`` or ``auto`` (now ``changepoint``; the
    name to use when any sound method will do), see the module docstring.
    ``min_dwell`` is the fewest samples a phase lasts: shorter stretches are spikes or
    pauses. ``max_regimes`` caps the active regimes (1 to 3; idle and spike do not
    count). ``penalty`` is the price of one change point in noise variances (> 0);
    ``None`` is BIC, ``2 ln(n)``; larger values give fewer segments.

    Samples count in ts order; ``min_dwell`` and segments are in samples, and a gap in
    ts does not end a segment (``phase_summary`` leaves gaps out of times and visits).

    Cost: under 1 ms per 1,441-sample series and 0.1 s for 100,000 samples (PELT runs on
    at most ``MAX_POINTS`` block means).
    """
    _check(
        "method", f"one of {', '.join(map(repr, get_args(Method)))}", method,
        ok=method in get_args(Method),
    )
    _check("min_dwell", "an int >= 1", min_dwell, ok=_is_int(min_dwell) and min_dwell >= 1)
    _check(
        "max_regimes", f"an int between 1 and {MAX_REGIMES}", max_regimes,
        ok=_is_int(max_regimes) and 1 <= max_regimes <= MAX_REGIMES,
    )
    _check(
        "penalty", "None or a finite number > 0", penalty,
        ok=penalty is None
        or (isinstance(penalty, int | float) and not isinstance(penalty, bool)
            and math.isfinite(penalty) and penalty > 0),
    )
    if not isinstance(telemetry, pl.DataFrame):
        raise InputError(
            f"detect_phases needs a polars DataFrame; got {type(telemetry).__name__}",
            hint="collect a LazyFrame first",
        )
    _check_canonical(telemetry, source="detect_phases")
    base = telemetry.drop([c for c in ("phase", "segment") if c in telemetry.columns])
    ordered = (
        base.select(*SERIES_KEYS, "ts", "value")
        .with_row_index("_row")
        .sort(*SERIES_KEYS, "ts", "_row")
    )
    n = ordered.height
    codes = np.full(n, _BUSY, dtype=np.int64)
    segments = np.zeros(n, dtype=np.int64)
    if n:
        values = ordered["value"].to_numpy().astype(np.float64, copy=False)
        keys = ordered.select(*SERIES_KEYS)
        starts = np.flatnonzero(
            keys.select(pl.any_horizontal(pl.all().ne_missing(pl.all().shift(1))))
            .to_series().fill_null(value=True).to_numpy()
        )
        ends = np.append(starts[1:], n)
        metrics = ordered["metric"].gather(starts.tolist()).to_list()
        for start, end, metric in zip(starts, ends, metrics, strict=True):
            codes[start:end], segments[start:end] = _label_series(
                values[start:end], metric, method=method, min_dwell=int(min_dwell),
                max_regimes=int(max_regimes), penalty=penalty,
            )
    labels = pl.DataFrame(
        {
            "_row": ordered["_row"],
            "phase": pl.Series(PHASES, dtype=pl.String).gather(codes),
            "segment": pl.Series(segments, dtype=pl.Int64),
        }
    ).sort("_row")
    return base.with_columns(labels["phase"], labels["segment"])


# --- one series -------------------------------------------------------------------------


def _label_series(
    x: FloatArray,
    metric: str,
    *,
    method: Method,
    min_dwell: int,
    max_regimes: int,
    penalty: float | None,
) -> tuple[IntArray, IntArray]:
    """Phase codes (indices into ``PHASES``) and segment ids of one series in time order."""
    idle = idle_mask(x, metric)
    if method == "threshold" or x.size < 2 * min_dwell:
        codes = np.where(idle, _IDLE, _BUSY).astype(np.int64)
        return codes, _run_ids(codes)
    window = 2 * min_dwell - 1
    state = _smooth_binary(idle, window=window, min_run=min_dwell)
    level = _running_median(x, window)
    sigma = _noise_scale(x, ~state)
    pen = (2.0 * math.log(x.size) if penalty is None else penalty) * sigma * sigma
    bounds: list[int] = []
    runs = _run_ids(state)
    lengths = np.bincount(runs)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
        if not state[start] and length >= 2 * min_dwell:  # an active stretch
            found = _change_points(level[start : start + length], min_size=min_dwell, pen=pen)
            bounds += [start + b for b in found]
    segments = _merge_short(
        _run_ids(_bounds_to_ids(bounds, x.size) * 2 + state), state, level, min_dwell
    )
    codes = np.full(x.size, _IDLE, dtype=np.int64)
    active = ~state
    if active.any():
        codes[active] = _regimes(level, segments, active, max_regimes, min_dwell)[active]
    codes[_spikes(x, level, segments, idle, min_dwell)] = _SPIKE
    return codes, segments


def _noise_scale(x: FloatArray, active: BoolArray) -> float:
    """Robust standard deviation of the noise of ``x`` while active; 0 if it is constant.

    Only differences between consecutive active samples count: idle stretches (often
    exactly zero) would make the noise of the active level look smaller than it is, and
    change points are only searched for within active stretches anyway. The scale is
    the MAD of those differences / sqrt(2): level shifts touch few differences, so they
    barely move it. When more than half of them are exactly zero (quantised or
    intermittent series) the MAD is zero; then the RMS of the differences without the
    largest ``TRIM`` share stands in. Floored at 1e-4 of the range so that a noise-free
    step signal still pays a positive price for every change point.
    """
    span = float(np.max(x) - np.min(x)) if x.size else 0.0
    if span == 0.0:
        return 0.0
    d = np.diff(x)[active[1:] & active[:-1]]
    if d.size == 0:
        return 1e-4 * span
    sigma = MAD_TO_SD * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2.0)
    if sigma == 0.0:
        small = np.sort(np.abs(d))[: max(1, math.ceil((1.0 - TRIM) * d.size))]
        sigma = math.sqrt(float(np.mean(small * small)) / 2.0)
    return max(sigma, 1e-4 * span)


def _running_median(x: FloatArray, window: int) -> FloatArray:
    """Median over ``window`` samples centred on each, mirrored at the ends."""
    if window <= 1:
        return x.astype(np.float64, copy=True)
    from scipy.ndimage import median_filter

    smoothed: FloatArray = median_filter(x, size=window, mode="mirror")
    return smoothed


def _run_ids(values: npt.NDArray[np.int64] | BoolArray) -> IntArray:
    """0, 1, 2, ... numbering the runs of equal consecutive values."""
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.concatenate(([0], (values[1:] != values[:-1]).astype(np.int64)))
    ids: IntArray = np.cumsum(change)
    return ids


def _bounds_to_ids(bounds: list[int], n: int) -> IntArray:
    """Segment id per sample from the sorted interior change points ``bounds``."""
    ids = np.zeros(n, dtype=np.int64)
    if bounds:
        ids[np.asarray(bounds, dtype=np.int64)] = 1
    result: IntArray = np.cumsum(ids)
    return result


def _smooth_binary(mask: BoolArray, *, window: int, min_run: int) -> BoolArray:
    """Running majority of ``mask`` repeated to its root, then no run shorter than
    ``min_run`` left (the mirrored ends can keep one): pauses and bursts shorter than a
    phase take the state of their surroundings.
    """
    state = mask.copy()
    half = window // 2
    for _ in range(MAX_SMOOTHING_PASSES):
        padded = np.pad(state.astype(np.int64), half, mode="reflect")
        sums = np.convolve(padded, np.ones(window, dtype=np.int64), mode="valid")
        smoothed = sums > half
        if np.array_equal(smoothed, state):
            break
        state = smoothed
    return _flip_short_runs(state, min_run)


def _flip_short_runs(state: BoolArray, min_run: int) -> BoolArray:
    """Flip runs shorter than ``min_run``, shortest first, into their neighbours.

    Flipping a run merges it with the runs on both sides; a heap over a linked list of
    runs keeps this O(R log R) in the number of runs R (a median root can still hold
    many short runs, e.g. an alternating pattern is one).
    """
    ids = _run_ids(state)
    lengths = np.bincount(ids)
    if lengths.size <= 1 or lengths.min() >= min_run:
        return state
    size = lengths.tolist()
    value = state[np.concatenate(([0], np.cumsum(lengths)[:-1]))].tolist()
    prev = list(range(-1, lengths.size - 1))
    nxt = [*range(1, lengths.size), -1]
    alive = [True] * lengths.size
    heap = [(n, j) for j, n in enumerate(size) if n < min_run]
    heapq.heapify(heap)
    runs = lengths.size
    while heap and runs > 1:
        n, j = heapq.heappop(heap)
        if not alive[j] or size[j] != n:
            continue  # merged away or grown since it was pushed
        value[j] = not value[j]  # both neighbours now have j's state: absorb them
        left, right = prev[j], nxt[j]
        if left >= 0:
            size[j] += size[left]
            alive[left] = False
            runs -= 1
            prev[j] = prev[left]
            if prev[j] >= 0:
                nxt[prev[j]] = j
        if right >= 0:
            size[j] += size[right]
            alive[right] = False
            runs -= 1
            nxt[j] = nxt[right]
            if nxt[j] >= 0:
                prev[nxt[j]] = j
        if size[j] < min_run:
            heapq.heappush(heap, (size[j], j))
    flags: list[bool] = []
    counts: list[int] = []
    j = next(j for j in range(lengths.size) if alive[j] and prev[j] < 0)
    while j >= 0:
        flags.append(value[j])
        counts.append(size[j])
        j = nxt[j]
    result: BoolArray = np.repeat(np.asarray(flags, dtype=np.bool_), counts)
    return result


def _change_points(level: FloatArray, *, min_size: int, pen: float) -> list[int]:
    """Interior change points of ``level`` (mean shifts, PELT), bounded in cost.

    Beyond ``MAX_POINTS`` samples the search runs on block means, whose squared error
    times the block size matches the full series', so the penalty is divided by it;
    each change point is then moved to the best sample within one block.
    """
    n = level.size
    if n < 2 * min_size or np.ptp(level) == 0.0:
        return []
    import ruptures as rpt

    block = math.ceil(n / MAX_POINTS)
    if block == 1:
        signal, size = level, min_size
    else:
        n_blocks = n // block
        signal = level[: n_blocks * block].reshape(n_blocks, block).mean(axis=1)
        size = max(1, math.ceil(min_size / block))
    try:
        found = rpt.KernelCPD(kernel="linear", min_size=size, jump=1).fit(
            signal.reshape(-1, 1)
        ).predict(pen=pen / block)
    except rpt.exceptions.BadSegmentationParameters:
        return []
    bounds = [int(b) * block for b in found[:-1]]
    if block > 1:
        bounds = _prune(level, _refine(level, bounds, radius=block), pen=pen)
    return bounds


def _sse(level: FloatArray) -> Callable[[IntArray | int, IntArray | int], FloatArray]:
    """Squared error of ``level[a:b]`` about its mean, in O(1) from prefix sums."""
    s1 = np.concatenate(([0.0], np.cumsum(level)))
    s2 = np.concatenate(([0.0], np.cumsum(level * level)))

    def sse(a: IntArray | int, b: IntArray | int) -> FloatArray:
        count = np.maximum(np.asarray(b) - np.asarray(a), 1)
        total = s1[b] - s1[a]
        result: FloatArray = s2[b] - s2[a] - total * total / count
        return result

    return sse


def _prune(level: FloatArray, bounds: list[int], *, pen: float) -> list[int]:
    """Drop, weakest first, change points that no longer pay their penalty at full
    resolution (a block straddling a change becomes a segment of its own on block means).
    """
    sse = _sse(level)
    kept = np.asarray(bounds, dtype=np.int64)
    while kept.size:
        edges = np.concatenate(([0], kept, [level.size]))
        gains = sse(edges[:-2], edges[2:]) - sse(edges[:-2], edges[1:-1]) - sse(
            edges[1:-1], edges[2:]
        )
        weakest = int(np.argmin(gains))
        if gains[weakest] >= pen:
            break
        kept = np.delete(kept, weakest)
    return [int(b) for b in kept]


def _refine(level: FloatArray, bounds: list[int], *, radius: int) -> list[int]:
    """Move each change point to the split of least squared error within ``radius``."""
    sse = _sse(level)
    refined: list[int] = []
    edges = [0, *bounds, level.size]
    for i, bound in enumerate(bounds):
        left = refined[-1] if refined else 0
        right = edges[i + 2]
        candidates = np.arange(max(left + 1, bound - radius), min(right - 1, bound + radius) + 1)
        if candidates.size == 0:
            refined.append(bound)
            continue
        costs = sse(left, candidates) + sse(candidates, right)
        refined.append(int(candidates[int(np.argmin(costs))]))
    return sorted(set(refined))


def _merge_short(
    pieces: IntArray, state: BoolArray, level: FloatArray, min_dwell: int
) -> IntArray:
    """Segment ids after merging pieces shorter than ``min_dwell`` into the neighbour of
    the same idle state whose mean level is closest (one pass, left to right).

    Short pieces appear where a change point falls next to an idle switch; change points
    and idle runs are each at least ``min_dwell`` apart, so a same-state neighbour exists
    unless the series is that short.
    """
    lengths = np.bincount(pieces)
    if lengths.size <= 1 or lengths.min() >= min_dwell:
        return pieces
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    size = lengths.astype(np.float64).tolist()
    total = np.bincount(pieces, weights=level).tolist()
    states = state[starts].tolist()
    members: list[list[int]] = [[j] for j in range(lengths.size)]
    stack: list[int] = []  # pieces kept, in order; merged pieces live on in their target
    for j in range(lengths.size):
        if size[j] >= min_dwell:
            stack.append(j)
            continue
        mean = total[j] / size[j]
        prev = stack[-1] if stack and states[stack[-1]] == states[j] else None
        nxt = j + 1 if j + 1 < lengths.size and states[j + 1] == states[j] else None
        if prev is not None and (
            nxt is None
            or abs(total[prev] / size[prev] - mean) <= abs(total[nxt] / size[nxt] - mean)
        ):
            target = prev
        elif nxt is not None:
            target = nxt
        else:
            stack.append(j)
            continue
        size[target] += size[j]
        total[target] += total[j]
        members[target] += members[j]
    owner = np.empty(lengths.size, dtype=np.int64)
    for new_id, j in enumerate(stack):
        owner[members[j]] = new_id
    result: IntArray = owner[pieces]
    return result


def _regimes(
    level: FloatArray, segments: IntArray, active: BoolArray, max_regimes: int, min_dwell: int
) -> IntArray:
    """Phase code per sample for the active samples: the regime of its segment."""
    ids = np.unique(segments[active])
    weights = np.bincount(segments, minlength=ids.max() + 1)[ids].astype(np.float64)
    sums = np.bincount(segments, weights=level)[ids]
    squares = np.bincount(segments, weights=level * level)[ids]
    means = sums / weights
    variances = np.maximum(squares / weights - means * means, 0.0)
    assignment = _cluster_levels(means, weights, variances, max_regimes, min_dwell)
    k = int(assignment.max()) + 1
    names = REGIME_NAMES[k]
    per_segment = np.full(int(segments.max()) + 1, _BUSY, dtype=np.int64)
    per_segment[ids] = [_CODE[names[a]] for a in assignment]
    codes: IntArray = per_segment[segments]
    return codes


def _cluster_levels(
    means: FloatArray, weights: FloatArray, variances: FloatArray, max_k: int, min_dwell: int
) -> IntArray:
    """Regime index (0 = lowest) per segment: the largest k whose regimes are distinct."""
    order = np.argsort(means, kind="stable")
    m = means[order]
    w = weights[order]
    v = variances[order]
    # pool sorted levels into bins so the O(k m^2) programme stays small
    n_bins = min(m.size, MAX_CLUSTER_POINTS)
    bin_of = np.arange(m.size, dtype=np.int64) * n_bins // m.size
    bw = np.bincount(bin_of, weights=w).astype(np.float64)
    bm = np.bincount(bin_of, weights=w * m).astype(np.float64) / bw
    bsq = np.bincount(bin_of, weights=w * (v + m * m)).astype(np.float64)
    best = np.zeros(bw.size, dtype=np.int64)
    for k in range(2, min(max_k, bw.size) + 1):
        labels = _kmeans_1d(bm, bw, k)
        if _distinct(labels, bm, bw, bsq, min_dwell):
            best = labels
    result = np.empty(means.size, dtype=np.int64)
    result[order] = best[bin_of]
    return result


def _kmeans_1d(points: FloatArray, weights: FloatArray, k: int) -> IntArray:
    """Optimal weighted k-means of sorted 1-D ``points`` (dynamic programming)."""
    n = points.size
    cw = np.concatenate(([0.0], np.cumsum(weights)))
    c1 = np.concatenate(([0.0], np.cumsum(weights * points)))
    c2 = np.concatenate(([0.0], np.cumsum(weights * points * points)))
    a = np.arange(n + 1)[:, None]
    b = np.arange(n + 1)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        span = c1[b] - c1[a]
        cost = c2[b] - c2[a] - span * span / (cw[b] - cw[a])
    cost = np.where(b > a, np.maximum(cost, 0.0), np.inf)  # cost[a, b]: points a..b-1
    total = cost[0].copy()
    back = np.zeros((k, n + 1), dtype=np.int64)
    for j in range(1, k):
        candidates = total[:, None] + cost
        back[j] = np.argmin(candidates, axis=0)
        total = candidates[back[j], np.arange(n + 1)]
    labels = np.empty(n, dtype=np.int64)
    end = n
    for j in range(k - 1, -1, -1):
        start = int(back[j, end]) if j else 0
        labels[start:end] = j
        end = start
    return labels


def _distinct(
    labels: IntArray, means: FloatArray, weights: FloatArray, squares: FloatArray, min_dwell: int
) -> bool:
    """Whether every regime holds ``min_dwell`` samples and stands apart from the next."""
    k = int(labels.max()) + 1
    w = np.bincount(labels, weights=weights, minlength=k)
    if w.min() < min_dwell:
        return False
    centre = np.bincount(labels, weights=weights * means, minlength=k) / w
    spread = np.sqrt(np.maximum(np.bincount(labels, weights=squares, minlength=k) / w
                                - centre * centre, 0.0))
    gap = np.diff(centre)
    wider = np.maximum(spread[1:], spread[:-1])
    return bool(np.all(gap > 2.0 * wider) and np.all(gap > MIN_RELATIVE_GAP * np.abs(centre[1:])))


def _group_medians(values: FloatArray, groups: IntArray, n_groups: int) -> FloatArray:
    """Median of ``values`` per group id in 0..n_groups-1 (0 for an empty group)."""
    order = np.lexsort((values, groups))
    ordered = np.append(values[order], 0.0)
    counts = np.bincount(groups, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    low = np.where(counts > 0, starts + (counts - 1) // 2, ordered.size - 1)
    high = np.where(counts > 0, starts + counts // 2, ordered.size - 1)
    medians: FloatArray = (ordered[low] + ordered[high]) / 2
    return medians


def _spikes(
    x: FloatArray, level: FloatArray, segments: IntArray, idle: BoolArray, min_dwell: int
) -> BoolArray:
    """Runs shorter than ``min_dwell`` well above the local level and not idle.

    "Well above" is more than ``SPIKE_Z`` times the segment's noise, the MAD of its
    first differences / sqrt(2) (zero in a segment idling at exactly zero, so any
    activity there is an excursion), and more than ``MIN_RELATIVE_GAP`` of the level.
    """
    n_segments = int(segments[-1]) + 1
    inside = segments[1:] == segments[:-1]
    d = np.diff(x)[inside]
    pair_segment = segments[1:][inside]
    centre = _group_medians(d, pair_segment, n_segments)
    spread = _group_medians(np.abs(d - centre[pair_segment]), pair_segment, n_segments)
    noise = MAD_TO_SD / math.sqrt(2.0) * spread
    residual = x - level
    bar = np.maximum(SPIKE_Z * noise[segments], MIN_RELATIVE_GAP * np.abs(level))
    above = (residual > bar) & ~idle
    if not above.any():
        return above
    ids = _run_ids(above)
    lengths = np.bincount(ids)
    spikes: BoolArray = above & (lengths[ids] < min_dwell)
    return spikes


# --- summaries ----------------------------------------------------------------------------


def _timeline(labeled: pl.DataFrame, *, source: str) -> pl.DataFrame:
    """Validated ``labeled`` in series and ts order with, per sample, the seconds it
    holds (``_held``), the next sample's phase unless a gap comes first (``_next``) and
    the number of its visit (``_visit``).
    """
    if not isinstance(labeled, pl.DataFrame):
        raise InputError(f"{source} needs a polars DataFrame; got {type(labeled).__name__}")
    _check_canonical(labeled, source=source)
    if "phase" not in labeled.columns or labeled.schema["phase"] != pl.String:
        raise InputError(
            f"{source}: the frame needs a String 'phase' column",
            hint="label it with foresize.profile.phases.detect_phases first",
        )
    if labeled["phase"].null_count():
        raise InputError(
            f"{source}: column 'phase' has {labeled['phase'].null_count()} null value(s)",
            hint="label it with foresize.profile.phases.detect_phases first",
        )
    keys = list(SERIES_KEYS)
    step = (pl.col("ts").shift(-1) - pl.col("ts")).dt.total_microseconds().cast(
        pl.Float64
    ) / 1e6
    frame = labeled.select(*keys, "ts", "value", "phase").sort(*keys, "ts")
    frame = frame.with_columns(step.over(keys).alias("_step"))
    frame = frame.with_columns(pl.col("_step").median().over(keys).alias("_median"))
    gap = pl.col("_step") > GAP_FACTOR * pl.col("_median")
    frame = frame.with_columns(
        pl.when(pl.col("_step").is_null() | gap)
        .then(pl.col("_median").fill_null(0.0))
        .otherwise(pl.col("_step"))
        .alias("_held"),
        (pl.col("phase").shift(-1).over(keys)).alias("_next"),
        gap.fill_null(value=False).alias("_gap"),
    )
    next_ok = pl.col("_next").is_not_null() & ~pl.col("_gap")
    frame = frame.with_columns(
        pl.when(next_ok).then(pl.col("_next")).alias("_next"),
        # a visit starts at a series' first sample, a phase change, or after a gap
        (
            (pl.col("phase") != pl.col("phase").shift(1)).fill_null(value=True)
            | pl.col("_gap").shift(1).fill_null(value=True)
        ).over(keys).alias("_new"),
    )
    return frame.with_columns(pl.col("_new").cum_sum().over(keys).alias("_visit"))


def _phase_order(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """Sort by series, then phases in ``PHASES`` order (other labels after, by name)."""
    rank = {name: i for i, name in enumerate(PHASES)}
    ranks = [
        pl.col(c).replace_strict(rank, default=len(PHASES), return_dtype=pl.Int64).alias(f"_{c}")
        for c in columns
    ]
    order = [x for c in columns for x in (f"_{c}", c)]
    return frame.with_columns(ranks).sort(*SERIES_KEYS, *order).drop(f"_{c}" for c in columns)


def phase_transitions(labeled: pl.DataFrame) -> pl.DataFrame:
    """The one-step transition matrix of each series, in long form, for any labels.

    ``labeled`` is canonical telemetry with a String ``phase`` column. Every pair of
    consecutive samples not separated by a gap (see ``phase_summary``) counts once.
    Returns ``TRANSITIONS_SCHEMA``: one row per observed (``phase``, ``next_phase``),
    self-transitions included, with ``n_transitions`` and ``p``, the probability that
    the sample after one in ``phase`` is in ``next_phase`` (``p`` sums to 1 over each
    phase that has a next sample). Pivot it on ``next_phase`` for a square matrix.
    """
    frame = _timeline(labeled, source="phase_transitions")
    pairs = (
        frame.filter(pl.col("_next").is_not_null())
        .group_by(*SERIES_KEYS, "phase", pl.col("_next").alias("next_phase"))
        .agg(pl.len().cast(pl.Int64).alias("n_transitions"))
        .with_columns(
            (pl.col("n_transitions") / pl.col("n_transitions").sum().over(*SERIES_KEYS, "phase"))
            .alias("p")
        )
    )
    return _phase_order(pairs, "phase", "next_phase").select(TRANSITIONS_SCHEMA.names()).cast(
        TRANSITIONS_SCHEMA
    )


def phase_summary(labeled: pl.DataFrame) -> pl.DataFrame:
    """Per workload x metric x phase: time, visits, dwell, demand and next phase.

    ``labeled`` is canonical telemetry with a String ``phase`` column (from
    ``detect_phases`` or a source that knows its phases). One row per phase present,
    ``SUMMARY_SCHEMA``, phases in ``PHASES`` order (other labels after, by name):

    * ``n_samples``; ``time_s``, the time the phase held; ``time_share`` of the series'
      observed time. A sample holds until the next one, unless that is more than
      ``GAP_FACTOR`` median intervals later (a gap: unobserved time, so the sample holds
      one median interval); the last sample holds one median interval. A series of one
      sample shares by samples.
    * ``n_visits``: the maximal runs of the phase (a gap ends a run);
      ``mean_dwell_s``/``max_dwell_s``: their durations, the dwell times.
    * ``mean``, ``p50``, ``p95``, ``p99``, ``max`` of ``value``: the demand in the phase.
    * transitions, from consecutive samples not separated by a gap: ``p_stay``, the
      probability that the next sample is in the same phase, and ``p_to_<phase>`` for
      every name in ``PHASES``, the probability of moving to that phase *when the phase
      is left* (the jump chain of a semi-Markov model: ``p_to_<own phase>`` is 0, the
      row sums to 1, all are null when the phase is never left). The one-step
      transition matrix is ``P[a, b] = (1 - p_stay[a]) * p_to_b[a]`` for b != a and
      ``p_stay[a]`` on the diagonal; ``phase_transitions`` gives it directly, for any
      labels (``p_to_*`` covers only the names in ``PHASES``).
    """
    frame = _timeline(labeled, source="phase_summary")
    if frame.is_empty():
        return pl.DataFrame(schema=SUMMARY_SCHEMA)
    keys = list(SERIES_KEYS)
    series_time = frame.group_by(keys).agg(
        pl.col("_held").sum().alias("_total"), pl.len().alias("_count")
    )
    visits = frame.group_by(*keys, "phase", "_visit").agg(pl.col("_held").sum().alias("dwell"))
    dwell = visits.group_by(*keys, "phase").agg(
        pl.len().cast(pl.Int64).alias("n_visits"),
        pl.col("dwell").mean().alias("mean_dwell_s"),
        pl.col("dwell").max().alias("max_dwell_s"),
    )
    value = pl.col("value")
    leave = pl.col("_next").is_not_null() & (pl.col("_next") != pl.col("phase"))
    stats = frame.group_by(*keys, "phase").agg(
        pl.len().cast(pl.Int64).alias("n_samples"),
        pl.col("_held").sum().alias("time_s"),
        value.mean().alias("mean"),
        value.quantile(0.5, "linear").alias("p50"),
        value.quantile(0.95, "linear").alias("p95"),
        value.quantile(0.99, "linear").alias("p99"),
        value.max().alias("max"),
        pl.col("_next").is_not_null().sum().alias("_pairs"),
        (pl.col("_next") == pl.col("phase")).sum().alias("_stays"),
        leave.sum().alias("_leaves"),
        *((leave & (pl.col("_next") == name)).sum().alias(f"_to_{name}") for name in PHASES),
    )
    leaves = pl.col("_leaves")
    summary = (
        stats.join(dwell, on=[*keys, "phase"])
        .join(series_time, on=keys)
        .with_columns(
            pl.when(pl.col("_total") > 0)
            .then(pl.col("time_s") / pl.col("_total"))
            .otherwise(pl.col("n_samples") / pl.col("_count"))
            .alias("time_share"),
            pl.when(pl.col("_pairs") > 0).then(pl.col("_stays") / pl.col("_pairs"))
            .alias("p_stay"),
            *(
                pl.when(leaves > 0).then(pl.col(f"_to_{name}") / leaves).alias(f"p_to_{name}")
                for name in PHASES
            ),
        )
    )
    return _phase_order(summary, "phase").select(SUMMARY_SCHEMA.names()).cast(SUMMARY_SCHEMA)
