"""Trace adapters on small files in the exact upstream formats (PAI 2020, DLRM 2025)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from foresize.core.errors import InputError
from foresize.ingest.alibaba.dlrm2025 import read_dlrm_instances
from foresize.ingest.alibaba.pai2020 import read_pai_table
from foresize.simulate.cluster.traces import (
    dlrm_workload,
    open_nodes,
    open_trace,
    pai_workload,
    synthetic_workload,
    with_deadlines,
)


def test_pai_jobs_from_the_three_tables(tmp_path: Path) -> None:
    (tmp_path / "pai_job_table.csv").write_text(
        "j1,i1,alice,Terminated,1000,2000\nj2,i2,bob,Terminated,1500,1800\n")
    (tmp_path / "pai_task_table.csv").write_text(
        "j1,worker,2,Terminated,1100,2000,600,29.296875,50,V100\n"
        "j2,tensorflow,1,Terminated,1500,1800,800,10,200,T4\n")
    (tmp_path / "pai_instance_table.csv").write_text(
        "j1,worker,w0,wk0,i1,Terminated,1100,1900,m1\n"
        "j1,worker,w1,wk1,i1,Terminated,1200,2000,m2\n"
        "j2,tensorflow,t0,wk2,i2,Failed,1500,0,m3\n")
    jobs, _ = read_pai_table(tmp_path / "pai_job_table.csv")
    tasks, _ = read_pai_table(tmp_path / "pai_task_table.csv")
    instances, _ = read_pai_table(tmp_path / "pai_instance_table.csv")
    w = pai_workload(jobs, tasks, instances)
    assert len(w) == 2  # j2's instance never ended
    assert w.arrival_s.tolist() == [0.0, 0.0]  # both at j1's submission, from trace start
    assert w.duration_s.tolist() == [800.0, 800.0]
    assert w.cpu_milli.tolist() == [6000, 6000]
    assert w.memory_mib.tolist() == [30000, 30000]
    assert w.num_gpu.tolist() == [1, 1]
    assert w.gpu_milli.tolist() == [500, 500]
    assert w.tenants == ("alice",)


def test_dlrm_instances(tmp_path: Path) -> None:
    path = tmp_path / "disaggregated_DLRM_trace.csv"
    header = ("instance_sn,role,app_name,cpu_request,cpu_limit,gpu_request,gpu_limit,"
              "rdma_request,rdma_limit,memory_request,memory_limit,disk_request,disk_limit,"
              "max_instance_per_node,creation_time,scheduled_time,deletion_time\n")
    path.write_text(header + ",,,,,,,,,,,,,,,,\n"
                    "a,HN,app1,8,8,2,2,10,10,64,64,100,100,-1,,,5000\n"
                    "b,CN,app2,16,16,0,0,0,0,32,32,50,50,2,100,110,\n"
                    "c,HN,app1,4,4,0.5,0.5,0,0,16,16,10,10,-1,200,210,3000\n")
    frame, _ = read_dlrm_instances(path)
    w = dlrm_workload(frame)
    assert w.arrival_s.tolist() == [0.0, 100.0, 200.0]  # NaN creation: before the trace
    assert w.duration_s.tolist() == [5000.0, 4900.0, 2800.0]  # no deletion: to the end
    assert w.num_gpu.tolist() == [2, 0, 1]
    assert w.gpu_milli.tolist() == [1000, 0, 500]
    assert w.cpu_milli.tolist() == [8000, 16000, 4000]
    assert w.memory_mib.tolist() == [65536, 32768, 16384]
    assert w.tenants == ("app1", "app2")


def test_synthetic_deadlines() -> None:
    w = with_deadlines(synthetic_workload(5, seed=0), 2.0)
    np.testing.assert_allclose(w.deadline_s, w.arrival_s + 2 * w.duration_s)
    with pytest.raises(InputError, match="deadline factor"):
        with_deadlines(w, 0.5)


def _pai_files(folder: Path) -> dict[str, str]:
    (folder / "jobs.csv").write_text("j1,i1,alice,Terminated,1000,2000\n")
    (folder / "tasks.csv").write_text("j1,worker,2,Terminated,1100,2000,600,29.296875,50,V100\n")
    (folder / "instances.csv").write_text("j1,worker,w0,wk0,i1,Terminated,1100,1900,m1\n"
                                          "j1,worker,w1,wk1,i1,Terminated,1200,2000,m2\n")
    return {"job": str(folder / "jobs.csv"), "task": str(folder / "tasks.csv"),
            "instance": str(folder / "instances.csv")}


def test_open_trace_names_every_adapter(tmp_path: Path, mirror: Path) -> None:
    assert len(open_trace("synthetic:7", seed=3)) == 7
    np.testing.assert_array_equal(open_trace("synthetic:7", seed=3).arrival_s,
                                  synthetic_workload(7, seed=3).arrival_s)
    assert len(open_trace("pai2020", pai_files=_pai_files(tmp_path))) == 2
    dlrm = tmp_path / "mine.csv"  # any name: the header tells DLRM from openb
    dlrm.write_text("instance_sn,role,app_name,cpu_request,cpu_limit,gpu_request,gpu_limit,"
                    "rdma_request,rdma_limit,memory_request,memory_limit,disk_request,"
                    "disk_limit,max_instance_per_node,creation_time,scheduled_time,"
                    "deletion_time\na,HN,app1,8,8,2,2,10,10,64,64,100,100,-1,,,5000\n")
    assert open_trace(str(dlrm)).num_gpu.tolist() == [2]
    with pytest.raises(InputError, match="synthetic:N"):
        open_trace("synthetic:many")
    with pytest.raises(InputError, match="not a PAI job table"):
        open_trace("pai2020", pai_files={"sensor": "x.csv"})
    # tables not given come from the mirror, which lacks them: the registry's error
    with pytest.raises(InputError, match=r"pai_task_table\.tar\.gz: .*get it from https://"):
        open_trace("pai2020", pai_files={"job": _pai_files(tmp_path)["job"]}, mirror=mirror)


def test_pai_machine_spec_cluster(mirror: Path) -> None:
    cluster = open_nodes("pai2020:machine_spec", mirror=mirror)
    assert cluster.n_nodes == 1897
    assert set(cluster.gpu_types) == {"MISC", "P100", "T4", "V100", "V100M32"}
    assert int((cluster.gpu_type == -1).sum()) == 83  # the "CPU" machines
    assert int(cluster.n_gpu.sum()) == 1295 * 2 + 519 * 8
    assert cluster.cpu_milli[0] == 96_000
    assert cluster.memory_mib[0] == 512 * 1024
    assert cluster.sha256 is not None
