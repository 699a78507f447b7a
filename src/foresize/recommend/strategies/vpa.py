"""A VPA-style recommender: the Kubernetes Vertical Pod Autoscaler's algorithm.

Constants and behaviour from kubernetes/autoscaler, ``vertical-pod-autoscaler/pkg/
recommender`` (``util/histogram.go``, ``util/histogram_options.go``,
``util/decaying_histogram.go``, ``model/aggregate_container_state.go``,
``model/container.go``, ``logic/recommender.go``, ``logic/estimator.go``):

* Histograms with exponentially growing buckets: each bucket 5 % wider than the one
  before (``HistogramBucketSizeGrowth = 0.05``), the first 0.01 core wide for CPU and
  1e7 bytes for memory; bucket ``i`` starts at ``first * (1.05**i - 1) / 0.05``. A
  percentile is the *end* of the bucket where the cumulative weight reaches it.
* Decay: a sample's weight doubles every 24 h (``CPUHistogramDecayHalfLife`` and
  ``MemoryHistogramDecayHalfLife``), so a day-old sample counts half.
* CPU: every sample, weight ``max(request, 0.1)`` (``minSampleWeight``; no request is
  known here, so 0.1). Memory: one peak per 24 h aggregation interval
  (``MemoryAggregationInterval``), 8 intervals kept (``MemoryAggregationIntervalCount``),
  weight 1 each.
* Lower bound / target / upper bound = P50 / P90 / P95, each times 1.15
  (``safetyMarginFraction = 0.15``); then the confidence ``c = min(history days,
  samples / 1440)`` widens the bounds: upper x ``(1 + 1/c)``, lower x ``(1 + 0.001/c)^-2``.
* Pod minimums 25 millicores and 250 MiB (``podMinCPUMillicores``, ``podMinMemoryMb``).
* OOM bump: after an OOM at usage ``u`` memory needs at least
  ``max(u + 100 MiB, 1.2 u)`` (``OOMMinBumpUp``, ``OOMBumpUpRatio``).

The recommendation is the target, used as the request; memory's limit equals it (the
benchmark treats it as enforced), CPU gets no limit.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from foresize.recommend.strategies.base import (
    Fleet,
    FloatArray,
    History,
    Sizing,
    Units,
    units_for,
)

BUCKET_GROWTH = 0.05
MAX_CPU_CORES = 1000.0
MAX_MEMORY_BYTES = 1e12
HALF_LIFE_S = 24 * 3600.0
CPU_MIN_SAMPLE_WEIGHT = 0.1
MEMORY_INTERVAL_S = 24 * 3600.0
MEMORY_INTERVALS_KEPT = 8
LOWER_PERCENTILE, TARGET_PERCENTILE, UPPER_PERCENTILE = 0.5, 0.9, 0.95
SAFETY_MARGIN = 0.15
UPPER_CONFIDENCE = (1.0, 1.0)  # (multiplier, exponent): x (1 + 1/c)^1
LOWER_CONFIDENCE = (0.001, -2.0)  # x (1 + 0.001/c)^-2
SAMPLES_PER_DAY = 60 * 24
OOM_BUMP_RATIO = 1.2
EPSILON = 1e-4
IntArray = npt.NDArray[np.int64]


class ExponentialHistogram:
    """VPA's histogram: bucket ``i`` spans ``[start(i), start(i + 1))`` with
    ``start(i) = first * (ratio**i - 1) / (ratio - 1)``; values above the last bucket
    fall into it.
    """

    def __init__(
        self, *, first_bucket: float, max_value: float, growth: float = BUCKET_GROWTH
    ) -> None:
        self.first_bucket = first_bucket
        self.ratio = 1.0 + growth
        self.n_buckets = (
            math.ceil(
                    math.log(max_value * (self.ratio - 1) / first_bucket + 1) / math.log(self.ratio)
                )
            + 1
        )
        self.weights = np.zeros(self.n_buckets)

    def bucket_start(self, bucket: int) -> float:
        """Where bucket ``bucket`` begins."""
        return self.first_bucket * (self.ratio**bucket - 1) / (self.ratio - 1)

    def find_buckets(self, values: FloatArray) -> IntArray:
        """The bucket of each value (0 below the first bucket's end)."""
        raw = np.log(np.maximum(values, 0.0) * (self.ratio - 1) / self.first_bucket + 1)
        buckets = np.floor(raw / math.log(self.ratio) + 1e-12).astype(np.int64)
        return np.clip(buckets, 0, self.n_buckets - 1)

    def add(self, values: FloatArray, weights: FloatArray) -> None:
        """Add weighted samples."""
        np.add.at(self.weights, self.find_buckets(values), weights)

    def percentile(self, p: float) -> float:
        """The end of the bucket where the cumulative weight first reaches ``p`` of the
        total (``histogram.go: Percentile``); 0 for an empty histogram.
        """
        total = float(self.weights.sum())
        if total < EPSILON:
            return 0.0
        cumulative = np.cumsum(self.weights)
        bucket = int(np.searchsorted(cumulative, p * total - 1e-12 * total))
        bucket = min(bucket, self.n_buckets - 1)
        if bucket < self.n_buckets - 1:
            return self.bucket_start(bucket + 1)
        return self.bucket_start(bucket)


def decay_weights(ts_s: FloatArray, base_weight: float) -> FloatArray:
    """Sample weights that double every ``HALF_LIFE_S`` (relative to the first sample;
    only ratios matter for percentiles).
    """
    weights: FloatArray = base_weight * np.exp2((ts_s - ts_s[0]) / HALF_LIFE_S)
    return weights


def memory_peaks(history: History) -> tuple[FloatArray, FloatArray]:
    """One peak (and its time) per 24 h aggregation interval, the last 8 intervals."""
    interval = np.floor((history.ts_s - history.ts_s[0]) / MEMORY_INTERVAL_S).astype(np.int64)
    keep = interval > interval.max() - MEMORY_INTERVALS_KEPT
    peaks: list[float] = []
    times: list[float] = []
    for index in np.unique(interval[keep]):
        inside = np.flatnonzero(interval == index)
        best = inside[int(np.argmax(history.values[inside]))]
        peaks.append(float(history.values[best]))
        times.append(float(history.ts_s[best]))
    return np.asarray(peaks), np.asarray(times)


def confidence(history: History) -> float:
    """``min(history days, samples / 1440)``: how much the history can be trusted."""
    days = history.window_s / 86400.0
    return min(days, history.n_points / SAMPLES_PER_DAY)


def with_confidence(value: float, conf: float, multiplier: float, exponent: float) -> float:
    """``value * (1 + multiplier / conf) ** exponent`` (VPA ``WithConfidenceMultiplier``)."""
    if conf <= 0:
        return value if exponent < 0 else math.inf
    return float(value * (1.0 + multiplier / conf) ** exponent)


def oom_bump(used: float, units: Units) -> float:
    """Memory needed after an OOM at ``used``: ``max(used + 100 MiB, used * 1.2)``."""
    return max(used + units.oom_min_bump, used * OOM_BUMP_RATIO)


def vpa_histogram(history: History, units: Units) -> ExponentialHistogram:
    """The decaying histogram VPA keeps for this history: all samples (CPU and
    utilisation) or one peak per day (memory).
    """
    max_value = MAX_MEMORY_BYTES if units.first_bucket >= 1e6 else MAX_CPU_CORES
    histogram = ExponentialHistogram(first_bucket=units.first_bucket, max_value=max_value)
    if units.kind == "memory":
        peaks, times = memory_peaks(history)
        histogram.add(peaks, decay_weights(times, 1.0) if times.size else times)
    else:
        histogram.add(history.values, decay_weights(history.ts_s, CPU_MIN_SAMPLE_WEIGHT))
    return histogram


def size_vpa(
    history: History,
    units: Units,
    *,
    margin: float = SAFETY_MARGIN,
    target_percentile: float = TARGET_PERCENTILE,
) -> Sizing:
    """VPA's lower bound, target and upper bound for one history."""
    histogram = vpa_histogram(history, units)
    conf = confidence(history)
    scale = 1.0 + margin
    base = histogram.percentile(target_percentile)
    target = max(base * scale, units.vpa_min)
    lower = max(
        with_confidence(histogram.percentile(LOWER_PERCENTILE) * scale, conf, *LOWER_CONFIDENCE),
        units.vpa_min,
    )
    upper = max(
        with_confidence(histogram.percentile(UPPER_PERCENTILE) * scale, conf, *UPPER_CONFIDENCE),
        units.vpa_min,
    )
    what = "daily peaks" if units.kind == "memory" else "samples"
    return Sizing(
        request=target,
        limit=target if units.kind == "memory" else None,
        base=base,
        quantile=target_percentile,
        margin=margin,
        lower=lower,
        upper=upper,
        rationale=f"VPA: P{target_percentile * 100:g} of decayed {what} (bucket end) "
        f"+{margin:.0%}; confidence {conf:.2f}",
        details={"confidence": conf},
    )


class VpaStrategy:
    """The VPA-style strategy; ``margin`` and ``target_percentile`` are the knobs the
    benchmark sweeps (upstream: 0.15 and 0.9).
    """

    name = "vpa"

    def __init__(
        self, *, margin: float = SAFETY_MARGIN, target_percentile: float = TARGET_PERCENTILE
    ) -> None:
        self.margin = margin
        self.target_percentile = target_percentile

    def __call__(
        self,
        fleet: Fleet,
        /,
        *,
        metric: str,
        risk: float,
        horizon_frac: float,
    ) -> dict[str, Sizing]:
        """Size each workload from its own history; ``risk`` is not used (VPA's risk is
        fixed by its percentile and margin).
        """
        units = units_for(metric)
        return {
            name: size_vpa(h, units, margin=self.margin, target_percentile=self.target_percentile)
            for name, h in fleet.items()
        }
