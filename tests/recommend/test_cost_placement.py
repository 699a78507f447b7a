from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from foresize.core.errors import InputError
from foresize.graph.devices import DEVICES, GiB
from foresize.graph.hf_config import read_hf_config
from foresize.graph.sizing import SizingRequest, size_architecture
from foresize.ingest.sources import ReadOptions, open_telemetry
from foresize.recommend.cost import (
    Price,
    commitment_plan,
    hourly_cost,
    load_prices,
    placement_cost,
)
from foresize.recommend.placement import MIG_PROFILES, memory_need_from_sizing, place, place_on
from foresize.recommend.scaling import replica_schedule

LLAMA2_7B = {
    "model_type": "llama",
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "intermediate_size": 11008,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": False,
}
LLAMA2_70B = {
    "model_type": "llama",
    "hidden_size": 8192,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "intermediate_size": 28672,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": False,
}


def _sizing(config: dict[str, object]) -> dict[str, object]:
    return size_architecture(read_hf_config(config), SizingRequest(batch=1, context=1024))


# ---- prices -------------------------------------------------------------------------------


def test_default_table_prices_every_catalogue_gpu_with_source_and_date() -> None:
    table = load_prices()
    assert table.as_of == "2024-12"
    assert "AWS EC2 on-demand" in table.source
    assert set(table.gpu) == {name for name in DEVICES if name != "cpu"}
    for name, price in table.gpu.items():
        # the file states its derivation: reserved = 0.60 x, spot = 0.35 x on-demand
        assert price.reserved_1y == pytest.approx(0.60 * price.on_demand, abs=1e-4), name
        assert price.spot == pytest.approx(0.35 * price.on_demand, abs=1e-4), name
        assert price.note, name  # the instance the figure came from
    # p5.48xlarge $98.32/h over 8 GPUs
    assert table.gpu_price("h100_sxm").on_demand == pytest.approx(98.32 / 8)
    assert table.resource_price("cpu").on_demand == pytest.approx(0.04048)
    shipped = resources.files("foresize.recommend").joinpath("prices.toml")
    assert shipped.is_file()  # package data (pyproject: recommend/*.toml)


def test_user_prices_merge_field_by_field(tmp_path: Path) -> None:
    user = tmp_path / "prices.toml"
    user.write_text(
        '[meta]\nas_of = "2025-06"\n\n[gpu.l4]\non_demand = 0.70\n\n'
        "[gpu.a10g]\non_demand = 1.006\nspot = 0.40\n"
    )
    table = load_prices(user)
    default = load_prices()
    assert table.gpu_price("l4").on_demand == 0.70
    assert table.gpu_price("l4").reserved_1y == default.gpu_price("l4").reserved_1y  # kept
    assert table.gpu_price("a10g").spot == 0.40
    assert table.gpu_price("a10g").reserved_1y is None
    assert table.gpu_price("h100_sxm") == default.gpu_price("h100_sxm")
    assert table.as_of == "2025-06"
    assert str(user) in table.source
    assert table.files == ("foresize/recommend/prices.toml", str(user))


def test_prices_file_missing_a_gpu_type_names_type_and_file(tmp_path: Path) -> None:
    user = tmp_path / "mine.toml"
    user.write_text("[gpu.l4]\non_demand = 0.7\n")
    table = load_prices(user, merge_defaults=False)
    with pytest.raises(
        InputError,
        match=rf"prices file {user} has no price for GPU type "
        r"'h100_sxm' \(it prices: l4\)",
    ):
        hourly_cost(table, gpu_type="h100_sxm", gpus=2)
    with pytest.raises(InputError, match=r"has no \[cpu\] price"):
        hourly_cost(table, vcpus=4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[gpu.l4\non_demand = 1", "is not valid TOML"),
        ("[gpu.l4]\non_demand = -1.0\n", r"gpu.l4.on_demand must be >= 0"),
        ("[gpu.l4]\nondemand = 1.0\n", r"unknown field gpu.l4.ondemand"),
        ("[gpu.l4]\non_demand = 'cheap'\n", r"gpu.l4.on_demand must be a number"),
        ("[gpus.l4]\non_demand = 1.0\n", r"unknown section\(s\) gpus"),
        ("[gpu.x1]\nspot = 1.0\n", r"gpu.x1 has no on_demand price"),
    ],
)
def test_bad_prices_files_are_input_errors_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        load_prices(path)
    assert "bad.toml" in str(err.value)
    with pytest.raises(InputError, match=r"absent\.toml: no such prices file"):
        load_prices(tmp_path / "absent.toml")


def test_hourly_cost_adds_gpu_cpu_and_memory() -> None:
    table = load_prices()
    cost = hourly_cost(table, gpu_type="h100_sxm", gpus=2, vcpus=8, memory_gib=32)
    assert cost.on_demand == pytest.approx(2 * 12.29 + 8 * 0.04048 + 32 * 0.004445)
    assert cost.reserved_1y == pytest.approx(2 * 7.374 + 8 * 0.03238 + 32 * 0.003556)
    assert cost.spot == pytest.approx(2 * 4.3015 + 8 * 0.01214 + 32 * 0.001334)
    assert [item[0] for item in cost.items] == ["gpu:h100_sxm", "cpu", "memory_gib"]


# ---- commitment ---------------------------------------------------------------------------


def _brute_force(demand: list[float], price: Price, step_hours: float) -> tuple[int, float]:
    best: tuple[int, float] | None = None
    for level in range(int(max(demand)) + 1):
        cost = 0.0
        for d in demand:
            cost += level * (price.reserved_1y or 0) + max(d - level, 0) * price.on_demand
        cost *= step_hours
        if best is None or cost < best[1] - 1e-9:
            best = (level, cost)
    assert best is not None
    return best


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_commitment_matches_brute_force_minimum(seed: int) -> None:
    rng = np.random.default_rng(seed)
    demand = [float(v) for v in rng.integers(0, 12, 48)]
    price = Price(on_demand=4.0, reserved_1y=2.4, spot=1.4)
    plan = commitment_plan(demand, price, step_hours=0.5)
    level, cost = _brute_force(demand, price, 0.5)
    assert plan.committed == level
    assert plan.mixed_cost == pytest.approx(cost)
    assert plan.all_on_demand_cost == pytest.approx(sum(demand) * 4.0 * 0.5)
    assert plan.saving == pytest.approx(plan.all_on_demand_cost - cost)
    # the newsvendor rule: demand reaches L at least r/o of the time, L+1 less often
    values = np.asarray(demand)
    assert np.mean(values >= level) >= plan.break_even == pytest.approx(0.6)
    assert np.mean(values >= level + 1) <= plan.break_even


def test_commitment_for_a_gpu_replica_schedule_with_spot_burst() -> None:
    demand = [2.0] * 12 + [6.0] * 6 + [2.0] * 6  # replicas per hour-step
    schedule = replica_schedule(demand, capacity=1.0, target_utilisation=1.0, step_s=3600)
    price = load_prices().gpu_price("a100_80gb")
    plan = commitment_plan(schedule, price, units_per_replica=2.0, spot_fraction=0.5)
    # 4 GPUs are needed all the time, 12 for a quarter of it (< 0.6): commit 4
    assert plan.committed == 4.0
    assert plan.coverage == 1.0
    assert plan.commitment_utilisation == pytest.approx(1.0)
    burst = 6 * 8  # GPU-hours above the commitment
    assert plan.mixed_cost == pytest.approx(4 * 24 * price.reserved_1y + burst * price.on_demand)
    assert plan.mixed_with_spot_cost == pytest.approx(
        plan.mixed_cost - burst * 0.5 * (price.on_demand - (price.spot or 0))
    )
    assert plan.saving_fraction == pytest.approx(1 - plan.mixed_cost / plan.all_on_demand_cost)
    with pytest.raises(InputError, match="no reserved_1y figure"):
        commitment_plan(demand, Price(on_demand=1.0), step_hours=1.0)


# ---- placement ----------------------------------------------------------------------------


def test_7b_bf16_fits_one_l4_whole_or_a_mig_slice_by_utilisation() -> None:
    need = memory_need_from_sizing(_sizing(LLAMA2_7B))
    assert 13 * GiB < need < 14 * GiB  # 13.5 GB of bf16 weights + KV cache for 1k tokens
    # by memory alone a T4 (14.4 GiB usable) would do, but it has no bf16 math
    assert place(need, sharing=False).best.device == "t4"
    whole = place(_sizing(LLAMA2_7B), sharing=False)
    assert whole.dtype == "bf16"
    assert whole.best.device == "l4"
    assert whole.best.devices == 1
    assert "needs 1 x l4" in whole.best.rationale
    assert {"t4", "v100_16gb", "v100_32gb"}.isdisjoint(o.device for o in whole.options)
    # P95 at 25 % of the GPU: 2/7 of the SMs covers it, and 2g.20gb's 18 GiB holds 13.3 GiB
    a100 = place_on(need, "a100_80gb", util_p95=0.25)
    assert a100 is not None
    assert (a100.mode, a100.profile) == ("mig", "2g.20gb")
    assert a100.resources == {"nvidia.com/mig-2g.20gb": 1}
    a100_40 = place_on(need, "a100_40gb", util_p95=0.25)
    assert a100_40 is not None
    assert a100_40.profile == "3g.20gb"
    busy = place_on(need, "a100_80gb", util_p95=0.75)
    assert busy is not None
    assert busy.mode == "whole"
    l4 = place_on(need, "l4", util_p95=0.25)
    assert l4 is not None
    assert l4.mode == "milli"
    assert l4.gpu_milli == 650


def test_70b_bf16_needs_two_h100_or_two_h200_by_tensor_parallelism() -> None:
    report = _sizing(LLAMA2_70B)
    need = memory_need_from_sizing(report)
    assert 128 * GiB < need < 130 * GiB
    plan = place(report)
    devices = {o.device: o.devices for o in plan.options}
    assert devices["h100_sxm"] == devices["a100_80gb"] == devices["h200"] == 2
    assert devices["a100_40gb"] == 4
    assert devices["l4"] == 8
    assert "t4" not in devices
    assert "v100_16gb" not in devices
    # H200's 141 GiB holds it on one device when 95 % of the memory is usable
    one = place_on(need, "h200", usable_fraction=0.95)
    assert one is not None
    assert one.devices == 1
    prices = load_prices().hourly()
    assert place(report, hourly_price=prices).best.device == "l4"  # 8 x $0.80: price only
    cheapest = place(report, hourly_price=prices, devices=["h100_sxm", "h200", "a100_80gb"])
    assert cheapest.best.device == "a100_80gb"
    assert cheapest.best.devices == 2
    assert placement_cost(cheapest.best, load_prices()).on_demand == pytest.approx(2 * 5.1207)


def test_a_model_no_device_holds_names_the_largest() -> None:
    with pytest.raises(
        InputError,
        match=r"needs 1.8 TiB of GPU memory; no candidate holds it "
        r"on 8 devices: the largest, h200, has 126.9 GiB",
    ):
        place(2e12)
    with pytest.raises(InputError, match="positive number of bytes"):
        place(-1.0)


def test_mig_catalogue_matches_nvidia_profiles() -> None:
    names = [p.name for p in MIG_PROFILES["a100_80gb"]]
    assert names == ["1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"]
    assert next(p.name for p in MIG_PROFILES["a100_40gb"]) == "1g.5gb"
    for profiles in MIG_PROFILES.values():
        assert sum(p.compute_slices for p in profiles if p.name.startswith("1g.")) == 2
        assert all(p.instances * p.compute_slices <= 7 for p in profiles)
        assert all(p.instances * p.memory_slices <= 8 for p in profiles)


def test_gentd26_gpu_utilisation_picks_slices_that_cover_the_p95(mirror: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = open_telemetry(["alibaba-gentd26:gpu_duty_cycle"], ReadOptions(mirror=mirror)).frame
        frame = frame.collect() if hasattr(frame, "collect") else frame
    p95 = frame.group_by("workload").agg(pl.col("value").quantile(0.95) / 100)["value"]
    assert p95.len() == 143
    modes: dict[str, int] = {}
    for util in p95.to_list():
        placement = place_on(8 * GiB, "h100_sxm", util_p95=util)
        assert placement is not None
        assert placement.compute_share >= util - 1e-9
        modes[placement.profile or placement.mode] = (
            modes.get(placement.profile or placement.mode, 0) + 1
        )
    # most GenTD26 containers run their GPU at 25-30 % (P95): a 2g slice holds them
    assert modes.get("2g.20gb", 0) > 71
    assert sum(modes.values()) == 143
