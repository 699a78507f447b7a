"""Cost per hour under on-demand, one-year committed and spot prices, and what to commit.

Prices come from a table shipped with foresize (``prices.toml``: its source, date and how
each figure was derived are in the file) with an optional user file merged over it entry by
entry, field by field.

The commitment rule is the classic newsvendor one. Over a horizon of ``T`` hours with
demand ``d(t)`` units, committing ``L`` units costs ``L * r * T`` plus on-demand
``o * integral(max(d - L, 0))``. One more committed unit costs ``r * T`` and saves
``o * (hours with d > L)``, so it pays while demand exceeds ``L`` for at least ``r / o`` of
the time: ``L*`` is the ``1 - r/o`` quantile of demand. :func:`commitment_plan` finds it
exactly by evaluating every whole-unit level, and reports all-on-demand, the mixed plan and
the saving; a share of the burst above ``L*`` can go to spot when it tolerates interruption.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from foresize.core.errors import InputError
from foresize.core.paths import missing_file
from foresize.recommend.placement import Placement
from foresize.recommend.scaling import ReplicaSchedule

PriceMode = Literal["on_demand", "reserved_1y", "spot"]
MODES: tuple[PriceMode, ...] = ("on_demand", "reserved_1y", "spot")
DEFAULT_PRICES = "prices.toml"
_TEXT_FIELDS = ("instance", "note")
_SECTIONS = ("meta", "gpu", "cpu", "memory")


@dataclass(frozen=True, slots=True)
class Price:
    """Prices of one unit (a GPU, a vCPU or a GiB) per hour; a missing mode is None."""

    on_demand: float
    reserved_1y: float | None = None
    spot: float | None = None
    note: str = ""

    def get(self, mode: PriceMode) -> float | None:
        """The price under ``mode``."""
        value: float | None = getattr(self, mode)
        return value

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {
            "on_demand": self.on_demand,
            "reserved_1y": self.reserved_1y,
            "spot": self.spot,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class PriceTable:
    """GPU prices by device name, CPU per vCPU and memory per GiB, with their provenance."""

    gpu: Mapping[str, Price]
    cpu: Price | None
    memory: Price | None
    currency: str
    source: str
    as_of: str
    files: tuple[str, ...] = field(default=())

    def _where(self) -> str:
        return " + ".join(self.files) or "the price table"

    def gpu_price(self, name: str) -> Price:
        """The price of GPU type ``name``; a type the table lacks is an InputError."""
        if name not in self.gpu:
            raise InputError(
                f"prices file {self._where()} has no price for GPU type {name!r} "
                f"(it prices: {', '.join(sorted(self.gpu)) or 'none'})"
            )
        return self.gpu[name]

    def resource_price(self, kind: Literal["cpu", "memory"]) -> Price:
        """The price of a vCPU-hour or a GiB-hour; InputError when the table has none."""
        price = self.cpu if kind == "cpu" else self.memory
        if price is None:
            raise InputError(f"prices file {self._where()} has no [{kind}] price")
        return price

    def hourly(self, mode: PriceMode = "on_demand") -> dict[str, float]:
        """GPU type -> price per GPU-hour under ``mode`` (types without it left out)."""
        return {n: v for n, p in self.gpu.items() if (v := p.get(mode)) is not None}

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {
            "currency": self.currency,
            "source": self.source,
            "as_of": self.as_of,
            "files": list(self.files),
            "gpu": {name: p.to_dict() for name, p in self.gpu.items()},
            "cpu": None if self.cpu is None else self.cpu.to_dict(),
            "memory": None if self.memory is None else self.memory.to_dict(),
        }


def _read_toml(path: Path | None) -> tuple[dict[str, Any], str]:
    """Parse the default table (``path`` None) or a user file, naming it on failure."""
    if path is None:
        text = resources.files("foresize.recommend").joinpath(DEFAULT_PRICES).read_text("utf-8")
        label = f"foresize/recommend/{DEFAULT_PRICES}"
    else:
        label = str(path)
        if not Path(path).exists():
            raise missing_file(path, what="prices file")
        try:
            text = Path(path).read_text("utf-8")
        except OSError as err:
            raise InputError(f"cannot read prices file {label}: {err.strerror or err}") from None
    try:
        return tomllib.loads(text), label
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"prices file {label} is not valid TOML: {err}") from None


def _check_entry(entry: Any, where: str, label: str) -> dict[str, Any]:
    """One price entry: numbers for the modes, text for the notes, nothing else."""
    if not isinstance(entry, Mapping):
        raise InputError(f"prices file {label}: {where} must be a table of prices")
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if key in _TEXT_FIELDS:
            out[key] = str(value)
        elif key in MODES:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(
                    f"prices file {label}: {where}.{key} must be a number, got {value!r}"
                )
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"prices file {label}: {where}.{key} must be >= 0, got {value}")
            out[key] = float(value)
        else:
            raise InputError(
                f"prices file {label}: unknown field {where}.{key}; valid: "
                f"{', '.join((*MODES, *_TEXT_FIELDS))}"
            )
    return out


def _entries(data: Mapping[str, Any], label: str) -> dict[str, dict[str, Any]]:
    """Flatten a parsed file to ``{"gpu.NAME" | "cpu" | "memory": fields}``, validated."""
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise InputError(
            f"prices file {label}: unknown section(s) {', '.join(unknown)}; "
            f"valid: {', '.join(_SECTIONS)}"
        )
    out: dict[str, dict[str, Any]] = {}
    gpus = data.get("gpu", {})
    if not isinstance(gpus, Mapping):
        raise InputError(f"prices file {label}: [gpu] must hold one [gpu.NAME] table per type")
    for name, entry in gpus.items():
        out[f"gpu.{name}"] = _check_entry(entry, f"gpu.{name}", label)
    for kind in ("cpu", "memory"):
        if kind in data:
            out[kind] = _check_entry(data[kind], kind, label)
    return out


def _price(fields: Mapping[str, Any], where: str, labels: str) -> Price:
    if "on_demand" not in fields:
        raise InputError(f"prices file {labels}: {where} has no on_demand price")
    return Price(
        on_demand=fields["on_demand"],
        reserved_1y=fields.get("reserved_1y"),
        spot=fields.get("spot"),
        note=fields.get("instance", fields.get("note", "")),
    )


def load_prices(path: str | Path | None = None, *, merge_defaults: bool = True) -> PriceTable:
    """The default price table, with the file at ``path`` merged over it.

    A user entry replaces the fields it names and keeps the others; a new GPU type is
    added. With ``merge_defaults=False`` the user file stands alone (then a GPU type the
    plan needs and the file lacks is an InputError naming both).
    """
    layers: list[tuple[dict[str, Any], str]] = []
    if merge_defaults or path is None:
        layers.append(_read_toml(None))
    if path is not None:
        layers.append(_read_toml(Path(path)))
    merged: dict[str, dict[str, Any]] = {}
    meta: dict[str, Any] = {}
    for data, label in layers:
        for key, fields in _entries(data, label).items():
            merged.setdefault(key, {}).update(fields)
        meta_part = data.get("meta", {})
        if isinstance(meta_part, Mapping):
            meta.update(meta_part)
    labels = " + ".join(label for _, label in layers)
    source = str(meta.get("source", "user prices"))
    if len(layers) > 1:
        source += f"; overridden by {layers[-1][1]}"
    gpus = {key[4:]: _price(f, key, labels) for key, f in merged.items() if key.startswith("gpu.")}
    return PriceTable(
        gpu=gpus,
        cpu=_price(merged["cpu"], "cpu", labels) if "cpu" in merged else None,
        memory=_price(merged["memory"], "memory", labels) if "memory" in merged else None,
        currency=str(meta.get("currency", "USD")),
        source=source,
        as_of=str(meta.get("as_of", "unknown")),
        files=tuple(label for _, label in layers),
    )


@dataclass(frozen=True, slots=True)
class HourlyCost:
    """Cost per hour of a resource bundle under each price mode (None: mode unpriced)."""

    on_demand: float
    reserved_1y: float | None
    spot: float | None
    items: tuple[tuple[str, float, float], ...]
    currency: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output; ``items`` are (what, quantity, on-demand per hour)."""
        return {
            "currency": self.currency,
            "per_hour": {
                "on_demand": self.on_demand,
                "reserved_1y": self.reserved_1y,
                "spot": self.spot,
            },
            "items": [
                {"what": w, "quantity": q, "on_demand_per_hour": c} for w, q, c in self.items
            ],
        }


def hourly_cost(
    prices: PriceTable,
    *,
    gpu_type: str | None = None,
    gpus: float = 0.0,
    vcpus: float = 0.0,
    memory_gib: float = 0.0,
) -> HourlyCost:
    """Cost per hour of ``gpus`` GPUs of ``gpu_type`` (fractions allowed), vCPUs and GiB."""
    for name, value in (("gpus", gpus), ("vcpus", vcpus), ("memory_gib", memory_gib)):
        if not (math.isfinite(value) and value >= 0):
            raise InputError(f"{name} must be >= 0, got {value}")
    parts: list[tuple[str, float, Price]] = []
    if gpus > 0:
        if gpu_type is None:
            raise InputError("gpus > 0 needs a gpu_type to price")
        parts.append((f"gpu:{gpu_type}", gpus, prices.gpu_price(gpu_type)))
    if vcpus > 0:
        parts.append(("cpu", vcpus, prices.resource_price("cpu")))
    if memory_gib > 0:
        parts.append(("memory_gib", memory_gib, prices.resource_price("memory")))
    totals: dict[PriceMode, float | None] = {}
    for mode in MODES:
        values = [p.get(mode) for _, _, p in parts]
        totals[mode] = (
            None
            if any(v is None for v in values)
            else float(sum(q * (v or 0.0) for (_, q, _), v in zip(parts, values, strict=True)))
        )
    return HourlyCost(
        on_demand=totals["on_demand"] or 0.0,
        reserved_1y=totals["reserved_1y"],
        spot=totals["spot"],
        items=tuple((w, q, q * p.on_demand) for w, q, p in parts),
        currency=prices.currency,
    )


def placement_cost(placement: Placement, prices: PriceTable, *, replicas: int = 1) -> HourlyCost:
    """Cost per hour of ``replicas`` copies of a placement (its GPU fraction x the price)."""
    if replicas < 0:
        raise InputError(f"replicas must be >= 0, got {replicas}")
    return hourly_cost(prices, gpu_type=placement.device, gpus=placement.gpu_fraction * replicas)


@dataclass(frozen=True, slots=True)
class CommitmentPlan:
    """How much to commit for a year and what the horizon costs with and without it.

    Costs are totals over the horizon; ``committed`` units are paid at the reserved price
    for every hour of it, the rest at on-demand (or spot for ``spot_fraction`` of it).
    """

    committed: float
    break_even: float
    coverage: float
    commitment_utilisation: float
    hours: float
    all_on_demand_cost: float
    mixed_cost: float
    spot_fraction: float
    mixed_with_spot_cost: float | None
    currency: str

    @property
    def saving(self) -> float:
        """All-on-demand minus the mixed plan."""
        return self.all_on_demand_cost - self.mixed_cost

    @property
    def saving_fraction(self) -> float:
        """The saving as a share of the all-on-demand cost."""
        return 0.0 if self.all_on_demand_cost == 0 else self.saving / self.all_on_demand_cost

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {
            "committed_units": self.committed,
            "break_even": self.break_even,
            "coverage": self.coverage,
            "commitment_utilisation": self.commitment_utilisation,
            "hours": self.hours,
            "currency": self.currency,
            "all_on_demand_cost": self.all_on_demand_cost,
            "mixed_cost": self.mixed_cost,
            "saving": self.saving,
            "saving_fraction": self.saving_fraction,
            "spot_fraction": self.spot_fraction,
            "mixed_with_spot_cost": self.mixed_with_spot_cost,
        }


def commitment_plan(
    demand: ReplicaSchedule | Sequence[float] | npt.NDArray[np.float64],
    price: Price,
    *,
    step_hours: float | None = None,
    units_per_replica: float = 1.0,
    unit: float = 1.0,
    spot_fraction: float = 0.0,
    currency: str = "USD",
) -> CommitmentPlan:
    """The committed level minimising the horizon's cost, and the costs around it.

    ``demand`` is units per step (GPUs, vCPUs...) or a replica schedule times
    ``units_per_replica``; commitments are bought in multiples of ``unit``. Of the burst
    above the commitment, ``spot_fraction`` can run on spot (it tolerates interruption).
    """
    if isinstance(demand, ReplicaSchedule):
        values = np.asarray(demand.replicas, dtype=np.float64) * units_per_replica
        step_hours = demand.step_hours if step_hours is None else step_hours
    else:
        values = np.asarray(demand, dtype=np.float64) * units_per_replica
    if step_hours is None or not (math.isfinite(step_hours) and step_hours > 0):
        raise InputError(f"step_hours must be a positive number, got {step_hours}")
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise InputError("commitment demand must be a non-empty series of finite values >= 0")
    if not (unit > 0 and math.isfinite(unit)):
        raise InputError(f"unit must be > 0, got {unit}")
    if not 0 <= spot_fraction <= 1:
        raise InputError(f"spot_fraction must be in [0, 1], got {spot_fraction}")
    if price.reserved_1y is None:
        raise InputError("the price has no reserved_1y figure: nothing to commit at")
    if spot_fraction > 0 and price.spot is None:
        raise InputError("spot_fraction > 0 but the price has no spot figure")
    levels = np.arange(0, math.ceil(values.max() / unit - 1e-9) + 1) * unit
    ordered = np.sort(values)
    suffix = np.concatenate([np.cumsum(ordered[::-1])[::-1], [0.0]])
    above = np.searchsorted(ordered, levels, side="right")  # first index with d > level
    excess = suffix[above] - levels * (values.size - above)
    costs = (levels * price.reserved_1y * values.size + excess * price.on_demand) * step_hours
    best = int(np.argmin(costs))
    committed = float(levels[best])
    hours = values.size * step_hours
    burst = float(excess[best]) * step_hours
    with_spot = None
    if price.spot is not None:
        with_spot = float(costs[best]) - burst * spot_fraction * (price.on_demand - price.spot)
    used = float(np.minimum(values, committed).sum()) * step_hours
    return CommitmentPlan(
        committed=committed,
        break_even=price.reserved_1y / price.on_demand if price.on_demand > 0 else 0.0,
        coverage=float(np.mean(values >= committed)) if committed > 0 else 1.0,
        commitment_utilisation=used / (committed * hours) if committed > 0 else 0.0,
        hours=hours,
        all_on_demand_cost=float(costs[0]),
        mixed_cost=float(costs[best]),
        spot_fraction=spot_fraction,
        mixed_with_spot_cost=with_spot,
        currency=currency,
    )
