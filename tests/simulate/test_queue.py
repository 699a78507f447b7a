"""Queue-order policies: hand-computed orders, DRF progressive filling, properties, registry."""

from __future__ import annotations

import bisect
import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foresize.core.errors import InputError, UnknownNameError
from foresize.simulate.cluster.queue import (
    QUEUE,
    DrfOrder,
    EdfOrder,
    FifoOrder,
    LasOrder,
    PriorityOrder,
    QueuePolicy,
    QueueView,
    SjfOrder,
    check_queue_policy,
    check_view,
)

NAN = math.nan
INT64 = np.iinfo(np.int64)


def make_view(k, **fields):
    """A valid view of k jobs: ids 1..k arriving at 0..k-1, one idle tenant; override any field."""
    base = {
        "now_s": 1000.0,
        "job_ids": np.arange(1, k + 1, dtype=np.int64),
        "arrival_s": np.arange(k, dtype=np.float64),
        "priority": np.zeros(k, dtype=np.int64),
        "tenant": np.zeros(k, dtype=np.int64),
        "est_duration_s": np.full(k, NAN),
        "deadline_s": np.full(k, NAN),
        "attained_s": np.zeros(k),
        "demand": np.ones((k, 3)),
        "capacity": np.array([10.0, 10.0, 10.0]),
        "tenant_usage": np.zeros((1, 3)),
    }
    ints = {"job_ids", "priority", "tenant"}
    for name, value in fields.items():
        base[name] = np.asarray(value, dtype=np.int64 if name in ints else np.float64)
    if k == 0:
        base["demand"] = base["demand"].reshape(0, 3)
    return QueueView(**base)


def order(policy: QueuePolicy, view: QueueView) -> list[int]:
    check_view(view)
    return policy.order(view).tolist()


# --------------------------------------------------------------------------- hand-computed orders


def test_fifo_sorts_by_arrival_then_job_id():
    view = make_view(5, job_ids=[5, 3, 9, 1, 7], arrival_s=[10, 10, 5, 20, 5])
    # t=5: ids 7 (4), 9 (2); t=10: ids 3 (1), 5 (0); t=20: id 1 (3)
    assert order(FifoOrder(), view) == [4, 2, 1, 0, 3]


def test_priority_is_descending_then_fifo():
    view = make_view(6, priority=[0, 5, 0, 5, -1, 10])
    assert order(PriorityOrder(), view) == [5, 1, 3, 0, 2, 4]


def test_priority_handles_the_int64_extremes():
    view = make_view(3, priority=[INT64.min, INT64.max, 0])
    assert order(PriorityOrder(), view) == [1, 2, 0]


def test_sjf_puts_unknown_durations_last_in_fifo_order():
    view = make_view(6, est_duration_s=[300, NAN, 100, 300, NAN, 50])
    assert order(SjfOrder(), view) == [5, 2, 0, 3, 1, 4]


def test_sjf_by_remaining_subtracts_attained_service():
    # remaining: 50, ?, 100, 300, ?, 50, 0 (attained beyond the estimate clips to 0)
    view = make_view(
        7,
        est_duration_s=[300, NAN, 100, 300, NAN, 50, 10],
        attained_s=[250, 9999, 0, 0, 0, 0, 20],
    )
    assert order(SjfOrder(by="remaining"), view) == [6, 0, 5, 2, 3, 1, 4]
    assert order(SjfOrder(), view) == [6, 5, 2, 0, 3, 1, 4]


def test_edf_puts_jobs_without_deadline_last():
    view = make_view(5, deadline_s=[NAN, 500, 200, 500, NAN])
    assert order(EdfOrder(), view) == [2, 1, 3, 0, 4]


def test_edf_breaks_ties_by_job_id_when_arrivals_tie():
    view = make_view(
        5, job_ids=[9, 8, 7, 6, 5], arrival_s=[0] * 5, deadline_s=[NAN, 500, 200, 500, NAN]
    )
    assert order(EdfOrder(), view) == [2, 3, 1, 4, 0]


def test_las_orders_by_queue_and_is_fifo_within_a_queue():
    # thresholds 100, 1000 -> queues 0, 2, 1 (100 reached), 0, 2 (1000 reached), 0
    view = make_view(6, attained_s=[0, 1500, 100, 99.9, 1000, 50])
    policy = LasOrder(thresholds_s=(100.0, 1000.0))
    assert policy.queue_of(view).tolist() == [0, 2, 1, 0, 2, 0]
    assert order(policy, view) == [0, 3, 5, 2, 1, 4]  # 99.9 before 50: FIFO, not plain LAS


def test_las_gpu_time_weights_service_by_gpus_held():
    # GPU-seconds: 0, 750, 200, 399.6, 1000, 400 -> queues 0, 1, 1, 1, 2, 1
    view = make_view(
        6,
        attained_s=[0, 1500, 100, 99.9, 1000, 50],
        demand=[[0, 0, g] for g in (0, 500, 2000, 4000, 1000, 8000)],
        capacity=[1.0, 1.0, 8000.0],
    )
    policy = LasOrder(thresholds_s=(100.0, 1000.0), service="gpu_time")
    assert order(policy, view) == [0, 1, 2, 3, 5, 4]


def ghodsi_view():
    """Ghodsi et al. (NSDI 2011) Fig. 1: 9 CPUs, 18 GB; A's tasks <1 CPU, 4 GB>, B's <3 CPU, 1 GB>.

    In milli-CPU and MiB, with 8 GPUs nobody asks for. B's five jobs arrive first
    (t=0..4, ids 10..14, rows 0..4), then A's (t=5..9, ids 0..4, rows 5..9).
    """
    a, b = [1000, 4096, 0], [3000, 1024, 0]
    return make_view(
        10,
        job_ids=[10, 11, 12, 13, 14, 0, 1, 2, 3, 4],
        tenant=[1] * 5 + [0] * 5,
        demand=[b] * 5 + [a] * 5,
        capacity=[9000, 18432, 8000],
        tenant_usage=np.zeros((2, 3)),
    )


def test_drf_reproduces_ghodsi_progressive_filling():
    # dominant shares before each pick (A, B):
    #  0, 0     tie -> older head (B, t=0)  B1   B -> 3/9
    #  0, 1/3   A1   A -> 4/18 = 2/9
    #  2/9, 1/3 A2   A -> 8/18 = 4/9
    #  4/9, 1/3 B2   B -> 6/9
    #  4/9, 2/3 A3   A -> 12/18 = 2/3   (A 3 tasks, B 2 tasks: the paper's allocation)
    #  2/3, 2/3 tie -> older head (B's t=2 vs A's t=8)  B3   B -> 1
    #  2/3, 1   A4   A -> 16/18;  8/9, 1  A5  A -> 20/18;  then B4, B5
    assert order(DrfOrder(), ghodsi_view()) == [0, 5, 6, 1, 7, 2, 8, 9, 3, 4]


def test_drf_starts_from_current_usage_and_skips_idle_tenants():
    # tenant 0 holds half the CPUs (share .5), tenant 1 20 % of the GPUs, tenant 2 queues nothing
    view = make_view(
        3,
        tenant=[0, 1, 1],
        demand=[[0, 0, 1000], [0, 0, 4000], [0, 0, 1000]],
        capacity=[10_000, 10_000, 10_000],
        tenant_usage=[[5000, 0, 0], [0, 0, 2000], [9000, 9000, 9000]],
    )
    # t1 .2 -> row 1 (t1 -> .6); t0 .5 -> row 0; then row 2
    assert order(DrfOrder(), view) == [1, 0, 2]


def test_drf_ignores_resources_the_cluster_does_not_have():
    # a CPU-only cluster: tenant 0's GPU usage must not count (otherwise it would be infinite)
    view = make_view(
        2,
        tenant=[1, 0],
        capacity=[1000, 1000, 0],
        tenant_usage=[[0, 0, 5000], [100, 0, 0]],
    )
    assert order(DrfOrder(), view) == [1, 0]


# --------------------------------------------------------------------------- properties

PRIORITIES = [int(INT64.min), -1, 0, 1, int(INT64.max)]


@st.composite
def views(draw):
    """Small views full of ties: few arrival times, priorities and durations; integer demands."""
    k = draw(st.integers(0, 25))
    n_tenants = draw(st.integers(1, 4))

    def column(elements):
        return draw(st.lists(elements, min_size=k, max_size=k))

    def triple(elements):
        return st.lists(elements, min_size=3, max_size=3)

    maybe = st.one_of(st.just(NAN), st.integers(0, 4).map(lambda x: x * 100.0))
    capacity = draw(triple(st.integers(0, 8)).filter(any))
    usage = st.lists(triple(st.integers(0, 5)), min_size=n_tenants, max_size=n_tenants)
    return make_view(
        k,
        job_ids=draw(st.lists(st.integers(-50, 50), min_size=k, max_size=k, unique=True)),
        arrival_s=column(st.integers(0, 3)),
        priority=column(st.sampled_from(PRIORITIES)),
        tenant=column(st.integers(0, n_tenants - 1)),
        est_duration_s=column(maybe),
        deadline_s=column(maybe),
        attained_s=column(st.sampled_from([0.0, 50.0, 3600.0, 7200.0])),
        demand=column(triple(st.integers(0, 3))),
        capacity=[c * 4 for c in capacity],
        tenant_usage=draw(usage),
    )


def _nan_last(x):
    return (math.isnan(x), 0.0 if math.isnan(x) else x)


# Each rule's primary key per job, written independently of the vectorised code.
KEYS = {
    "fifo": lambda v, i: (),
    "priority": lambda v, i: (-int(v.priority[i]),),
    "sjf": lambda v, i: _nan_last(float(v.est_duration_s[i])),
    "edf": lambda v, i: _nan_last(float(v.deadline_s[i])),
    "las": lambda v, i: (bisect.bisect_right([3600.0], float(v.attained_s[i])),),
}


def drf_by_progressive_filling(view):
    """DRF the slow, obvious way: loop, pick the lowest dominant share, add the job's demand."""
    fifo = sorted(range(len(view.job_ids)), key=lambda i: (view.arrival_s[i], view.job_ids[i]))
    pending = {t: [i for i in fifo if view.tenant[i] == t] for t in set(view.tenant.tolist())}
    usage = view.tenant_usage.copy()
    present = view.capacity > 0
    result = []
    while any(pending.values()):

        def share(t):
            return max(usage[t][present] / view.capacity[present])

        tenant = min(
            (t for t in pending if pending[t]), key=lambda t: (share(t), fifo.index(pending[t][0]))
        )
        job = pending[tenant].pop(0)
        usage[tenant] += view.demand[job]
        result.append(job)
    return result


@settings(max_examples=150, deadline=None)
@given(view=views())
def test_every_policy_returns_a_deterministic_permutation(view):
    check_view(view)
    k = len(view.job_ids)
    for name in QUEUE:
        policy = QUEUE.get(name)()
        first = policy.order(view)
        assert sorted(first.tolist()) == list(range(k)), name
        assert np.array_equal(policy.order(view), first), name


@settings(max_examples=150, deadline=None)
@given(view=views())
def test_sorting_rules_match_their_key_then_fifo(view):
    """Equal keys keep FIFO order: the whole order equals a sort by (key, arrival, job id)."""
    for name, key in KEYS.items():
        expected = sorted(
            range(len(view.job_ids)),
            key=lambda i, key=key: (*key(view, i), view.arrival_s[i], view.job_ids[i]),
        )
        assert order(QUEUE.get(name)(), view) == expected, name


@settings(max_examples=150, deadline=None)
@given(view=views())
def test_drf_merge_equals_the_progressive_filling_loop(view):
    assert order(DrfOrder(), view) == drf_by_progressive_filling(view)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("arrival_s", [0.0, 1.0]),
        ("arrival_s", [0.0, NAN, 2.0]),
        ("demand", [[1, 1, 1], [1, NAN, 1], [1, 1, 1]]),
        ("demand", [[1, 1], [1, 1], [1, 1]]),
        ("demand", [[1, 1, 1], [1, -1, 1], [1, 1, 1]]),
        ("attained_s", [0.0, NAN, 0.0]),
        ("est_duration_s", [10.0, -1.0, NAN]),
        ("capacity", [0.0, 0.0, 0.0]),
        ("capacity", [10.0, -1.0, 10.0]),
        ("tenant", [0, 1, 0]),
        ("job_ids", [1, 2, 1]),
        ("tenant_usage", [[1.0, 1.0]]),
    ],
)
def test_check_view_names_the_bad_field(field, bad):
    with pytest.raises(InputError, match=f"'{field}'") as info:
        check_view(make_view(3, **{field: bad}))
    assert "\n" not in str(info.value)


def test_check_view_rejects_float_job_ids():
    view = dataclasses.replace(make_view(2), job_ids=np.array([1.0, 2.0]))
    with pytest.raises(InputError, match="'job_ids' has dtype float64"):
        check_view(view)


def test_check_view_accepts_an_empty_queue_and_a_cpu_only_cluster():
    check_view(make_view(0))
    check_view(make_view(2, capacity=[4000, 8192, 0]))


# --------------------------------------------------------------------------- registry and settings


def test_registry_lists_the_policies():
    assert set(QUEUE.names()) >= {"fifo", "priority", "sjf", "edf", "drf", "las"}


def test_unknown_policy_suggests_the_closest_name():
    with pytest.raises(UnknownNameError, match="Did you mean 'fifo'") as info:
        QUEUE.get("fiffo")
    assert "drf" in str(info.value)


@pytest.mark.parametrize("name", QUEUE.names())
def test_registered_policy_conforms(name):
    policy = QUEUE.get(name)()
    assert policy.name == name
    check_queue_policy(policy)


def test_conformance_check_catches_a_lost_job():
    class LosesAJob(FifoOrder):
        __slots__ = ()

        def order(self, view, /):
            return super().order(view)[:-1]

    with pytest.raises(AssertionError, match="not a permutation"):
        check_queue_policy(LosesAJob())


def test_conformance_check_catches_a_policy_that_edits_the_view():
    class SortsInPlace(FifoOrder):
        __slots__ = ()

        def order(self, view, /):
            view.arrival_s.sort()
            return super().order(view)

    with pytest.raises(AssertionError, match="modified the view's 'arrival_s'"):
        check_queue_policy(SortsInPlace())


def test_settings_are_typed_dataclass_fields_for_the_cli():
    fields = {f.name: (f.type, f.default) for f in dataclasses.fields(LasOrder)}
    assert fields == {
        "thresholds_s": ("tuple[float, ...]", (3600.0,)),
        "service": ("LasService", "time"),
    }
    assert [f.name for f in dataclasses.fields(SjfOrder)] == ["by"]
    assert dataclasses.fields(FifoOrder) == ()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: LasOrder(thresholds_s=(100.0, 10.0)), "'thresholds_s' .* strictly increasing"),
        (lambda: LasOrder(thresholds_s=(-1.0,)), "'thresholds_s' .* positive"),
        (lambda: LasOrder(service="wall"), "'service' parameter of LasOrder must be one of"),
        (lambda: SjfOrder(by="size"), "'by' parameter of SjfOrder"),
    ],
)
def test_bad_settings_raise_input_error(make, match):
    with pytest.raises(InputError, match=match):
        make()
