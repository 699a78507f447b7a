"""Device catalogue values, roofline crossover and device counts, by hand."""

import pytest

from foresize.core.errors import InputError, UnknownNameError
from foresize.graph.devices import DEVICES, fits, get_device, roofline_time

GiB = 2**30


def test_catalogue_has_the_common_devices():
    for name in (
        "a100_40gb",
        "a100_80gb",
        "h100_sxm",
        "h100_pcie",
        "h200",
        "l4",
        "t4",
        "v100_16gb",
        "v100_32gb",
        "cpu",
    ):
        assert name in DEVICES


def test_known_datasheet_values():
    a100 = get_device("a100_80gb")
    assert a100.memory_bytes == 80 * GiB
    assert a100.bandwidth_bytes_per_s == 2039e9
    assert a100.peak("bf16") == 312e12
    assert a100.peak("tf32") == 156e12  # dense, not the 312 sparse figure
    h100 = get_device("h100_sxm")
    assert h100.bandwidth_bytes_per_s == 3350e9
    assert h100.peak("bf16") == 989.5e12  # half of the datasheet's 1979 with sparsity


def test_missing_dtype_lists_known_ones():
    with pytest.raises(InputError, match=r"t4 has no bf16 peak.*known: fp32, fp16, int8"):
        get_device("t4").peak("bf16")


def test_roofline_crossover_by_hand():
    # A100 80GB bf16 ridge point: 312e12 / 2039e9 = 153.0 FLOPs per byte.
    a100 = get_device("a100_80gb")
    ridge = 312e12 / 2039e9
    bytes_moved = 1e9
    seconds, bound = roofline_time(100 * bytes_moved, bytes_moved, a100, "bf16")
    assert bound == "memory"
    assert seconds == pytest.approx(1e9 / 2039e9)
    seconds, bound = roofline_time(200 * bytes_moved, bytes_moved, "a100_80gb", "bf16")
    assert bound == "compute"
    assert seconds == pytest.approx(200e9 / 312e12)
    assert 100 < ridge < 200
    seconds, bound = roofline_time(312e12, 2039e9, a100, "bf16")  # exactly at the ridge
    assert (seconds, bound) == (1.0, "compute")


def test_decode_step_of_a_7b_model_is_memory_bound():
    # One token of LLaMA-2-7B in bf16 reads every weight once: ~2 FLOPs per 2 bytes.
    seconds, bound = roofline_time(2 * 6.74e9, 2 * 6.74e9, "h100_sxm", "bf16")
    assert bound == "memory"
    assert seconds == pytest.approx(13.48e9 / 3350e9)


def test_fits_arithmetic():
    usable = 80 * GiB * 0.9
    assert fits(0, "a100_80gb") == 1
    assert fits(usable, "a100_80gb") == 1
    assert fits(usable + 1, "a100_80gb") == 2
    assert fits(107_814_649_856, "a100_80gb") == 2  # 7B AdamW state: 100.4 GiB > 72 GiB
    assert fits(107_814_649_856, "a100_40gb") == 3  # 36 GiB usable each
    assert fits(80 * GiB, "a100_80gb", usable_fraction=1.0) == 1


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: fits(-1, "l4"), "total_bytes"),
        (lambda: fits(1, "l4", usable_fraction=0), "usable_fraction"),
        (lambda: roofline_time(-1, 0, "l4", "fp32"), "flops and bytes_moved"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_unknown_device_suggests():
    with pytest.raises(UnknownNameError, match="Did you mean 'h100_sxm'") as info:
        get_device("h100_sxn")
    assert info.value.suggestion == "h100_sxm"


@pytest.mark.parametrize(
    ("typed", "name"),
    [("H100", "h100_sxm"), ("h100-pcie", "h100_pcie"), ("A100-80GB", "a100_80gb"),
     ("a100", "a100_80gb"), ("v100-16g", "v100_16gb"), ("H200", "h200")],
)
def test_device_names_as_people_type_them(typed: str, name: str):
    assert get_device(typed).name == name


def test_allreduce_pays_nccl_latency_per_ring_step():
    from foresize.graph.devices import allreduce_time

    # 1 MB over 4 H200s (900 GB/s both ways): 8.4 us + 6 steps x 3.4 us, then 2 x 3/4 x 1 MB
    # at 450 GB/s
    assert allreduce_time(1e6, 4, "h200") == pytest.approx(8.4e-6 + 6 * 3.4e-6 + 1.5e6 / 450e9)
    assert allreduce_time(1e6, 1, "h200") == 0.0
