"""``foresize simulate``: replay traces through the reference scheduler, compare policies."""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, cast, get_args

import numpy as np
import polars as pl
import typer

from foresize.cli import autoscale
from foresize.cli.common import provenance
from foresize.cli.options import (
    EngineOpt,
    FormatOpt,
    MirrorOpt,
    OutputOpt,
    RayAddressOpt,
    SeedOpt,
)
from foresize.cli.output import SETTINGS, Result, emit, info, progress
from foresize.core.errors import InputError
from foresize.core.io import atomic_write
from foresize.core.parallel import check_engine
from foresize.core.units import parse_duration
from foresize.simulate.cluster.autoscaler import AUTOSCALE
from foresize.simulate.cluster.carbon import CarbonAware, Series, diurnal, read_series
from foresize.simulate.cluster.engine import Autoscaling, Restart, replay
from foresize.simulate.cluster.inflation import (
    InflationCurve,
    compare_inflation,
    curves_document,
)
from foresize.simulate.cluster.placement import PLACEMENT
from foresize.simulate.cluster.pools import parse_pool, with_pools
from foresize.simulate.cluster.preemption import PREEMPTION
from foresize.simulate.cluster.queue import QUEUE
from foresize.simulate.cluster.state import Cluster, parse_mig
from foresize.simulate.cluster.traces import open_nodes, open_trace, with_deadlines
from foresize.simulate.cluster.workload import Workload

app = typer.Typer(help="Reference scheduler simulator: replay traces, compare placement "
                  "and queue policies.", no_args_is_help=True)


SCHEDULE_EPILOG = """\
Examples:

  foresize simulate schedule --placement best_fit,dot_product,fgd --seeds 10

  foresize simulate schedule --trace openb:gpuspec33 --placement fgd -o fgd.json --plot fgd.png

  foresize simulate schedule --mode replay --queue fifo --placement best_fit,fgd

  foresize simulate schedule --mode replay --queue priority --placement best_fit \
      --preemption lowest_priority

  foresize simulate schedule --mode replay --placement best_fit --deadline-factor 3 \
      --carbon diurnal --carbon-aware

  foresize simulate schedule --mode replay --trace pai2020 --nodes pai2020:machine_spec \
      --pai-table job=pai_job_table.csv --pai-table task=pai_task_table.csv \
      --pai-table instance=pai_instance_table.csv

  foresize simulate schedule --mode replay --trace synthetic:500 --nodes none \
      --pool name=t4,cpu=32,memory_gib=128,gpus=4,gpu_model=T4,price=3.9,delay=2m,max=20 \
      --pool name=a100,cpu=96,memory_gib=1152,gpus=8,gpu_model=A100,price=32.8,delay=5m \
      --autoscaler cluster_autoscaler --autoscale-every 60s --scale-down-after 10m
"""


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InputError("--placement names no policy", hint="e.g. --placement best_fit,fgd")
    for name in names:
        PLACEMENT.get(name)  # UnknownNameError with "Did you mean"
    return names


def _mig_layout(text: str) -> tuple[str, tuple[int, ...]]:
    """``A100=3g+2g+2g`` -> ``("A100", (3, 2, 2))`` (the ``--mig`` syntax)."""
    model, sep, layout = text.partition("=")
    if not sep or not model:
        raise typer.BadParameter(f"{text!r} is not MODEL=LAYOUT, e.g. A100=3g+2g+2g",
                                 param_hint="--mig")
    return model, parse_mig(layout)


def _pai_files(options: list[str]) -> dict[str, str]:
    """``--pai-table job=FILE`` options as ``{"job": "FILE"}``."""
    files: dict[str, str] = {}
    for text in options:
        name, sep, path = text.partition("=")
        if not sep or not path:
            raise InputError(f"--pai-table {text!r}: expected TABLE=FILE",
                             hint="e.g. --pai-table job=pai_job_table.tar.gz")
        files[name] = path
    return files


def _inflation(workload: Workload, cluster: Cluster, names: list[str], seeds: list[int], *,
               target: float, step: float, engine: str, address: str | None,
               ) -> tuple[pl.DataFrame, dict[str, Any], dict[str, InflationCurve]]:
    with progress("inflation runs", len(names)) as bar:
        rows, curves = compare_inflation(workload, cluster, names, seeds, target=target,
                                         step=step, engine=engine, address=address,
                                         on_run=bar.advance)
    return pl.DataFrame(rows), {"curves": curves_document(curves)}, curves


@dataclass(frozen=True, slots=True)
class ReplaySetup:
    """What a replay run composes besides placement: queue, preemption, restart, carbon."""

    queue: str
    preemption: str
    restart: Restart
    intensity: Series
    carbon_aware: bool
    autoscaling: Autoscaling | None = None


def _one_replay(workload: Workload, cluster: Cluster, name: str, seed: int,
                setup: ReplaySetup, admission: CarbonAware | None) -> dict[str, Any]:
    end = float(np.max(workload.arrival_s + workload.duration_s))
    with progress(f"replay {name} seed {seed}", round(end)) as bar:
        done = [0.0]

        def tick(now: float) -> None:
            bar.advance(round(now - done[0]))
            done[0] = round(now)

        result = replay(workload, cluster, PLACEMENT.get(name)(workload, cluster),
                        QUEUE.get(setup.queue)(),
                        preemption=PREEMPTION.get(setup.preemption)(),
                        admission=admission, restart=setup.restart, seed=seed, tick=tick,
                        autoscaling=setup.autoscaling)
    return result.summary(workload, cluster, intensity=setup.intensity)


def _replay(workload: Workload, cluster: Cluster, names: list[str], seeds: list[int], *,
            setup: ReplaySetup) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Each policy and seed; with ``carbon_aware`` also the same run without holding
    jobs, so the carbon saved is measured against an otherwise identical run.
    """
    aware = CarbonAware(setup.intensity) if setup.carbon_aware else None
    rows, runs = [], []
    for name in names:
        summaries = []
        for seed in seeds:
            summary = _one_replay(workload, cluster, name, seed, setup, aware)
            if aware is not None:
                base = _one_replay(workload, cluster, name, seed, setup, None)["energy"]
                summary["carbon_saved_kg"] = {
                    "total": base["carbon_kg"] - summary["energy"]["carbon_kg"],
                    "dynamic": base["dynamic_carbon_kg"] - summary["energy"]["dynamic_carbon_kg"],
                }
            summaries.append(summary)
            runs.append({"policy": name, "seed": seed, **summary})

        def mean(*path: str, of: list[dict[str, Any]] = summaries) -> float:
            values = []
            for summary in of:
                value: Any = summary
                for key in path:
                    value = value[key]
                values.append(float(value))
            return float(np.mean(values))

        row = {
            "policy": name,
            "wait_mean_s": mean("queueing_delay", "mean_s"),
            "wait_p99_s": mean("queueing_delay", "p99_s"),
            "jct_mean_s": mean("jct", "mean_s"),
            "makespan_s": mean("makespan_s"),
            "gpu_util_frac": mean("mean_util", "gpu"),
            "never_fit": summaries[0]["n_never_fit"],
            "unscheduled": mean("n_unscheduled"),
            "preemptions": mean("preemptions", "total"),
            "deadline_miss_frac": mean("deadlines", "miss_rate"),
            "cost_usd": mean("energy", "cost_usd"),
            "energy_kwh": mean("energy", "energy_kwh"),
            "carbon_kg": mean("energy", "carbon_kg"),
            "events_per_second": mean("events_per_second"),
        }
        if aware is not None:
            row["dyn_carbon_saved_kg"] = mean("carbon_saved_kg", "dynamic")
        if setup.autoscaling is not None:
            row.update(node_hours=mean("autoscale", "node_hours"),
                       pool_cost_usd=mean("autoscale", "cost_usd"),
                       scale_ups=mean("autoscale", "scale_ups"),
                       scale_downs=mean("autoscale", "scale_downs"),
                       provisioning_wait_s=mean("autoscale", "provisioning_wait", "total_s"))
        rows.append(row)
    return pl.DataFrame(rows), {"runs": runs}


def _plot(curves: dict[str, InflationCurve], path: Path) -> None:
    try:
        import matplotlib as mpl

        mpl.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib",
                         hint="pip install 'foresize[plot]'") from None
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        ax.plot(curve.arrived_frac * 100, curve.allocated_frac * 100, label=name)
    ax.set_xlabel("arrived GPU demand (% of capacity)")
    ax.set_ylabel("allocated GPU (% of capacity)")
    ax.legend()
    ax.grid(alpha=0.3)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)
    info(f"wrote {path}")


@app.command("schedule", epilog=SCHEDULE_EPILOG)
def schedule(
    trace: Annotated[str, typer.Option(
        "--trace", help="Pods: openb:VARIANT or an openb pod CSV; pai2020 (job, task and "
        "instance tables, see --pai-table); dlrm2025:instances or a DLRM CSV; synthetic:N "
        "(N pods drawn with --seed).", rich_help_panel="Input")] = "openb:default",
    nodes: Annotated[str, typer.Option(
        "--nodes", help="Fixed nodes: openb:nodes_gpu, openb:nodes_all, an openb node CSV, "
        "pai2020:machine_spec (or its file), or 'none' (only --pool nodes).",
        rich_help_panel="Input")] = "openb:nodes_gpu",
    pai_table: Annotated[list[str] | None, typer.Option(
        "--pai-table", help="With --trace pai2020: TABLE=FILE for job, task or instance "
        "(repeatable); tables not given come from pai2020:TABLE in the mirror or cache.",
        rich_help_panel="Input", show_default=False)] = None,
    pool: Annotated[list[str] | None, typer.Option(
        "--pool", help="Replay: an autoscaled node pool, name=N,cpu=CORES,memory_gib=G"
        "[,gpus=K,gpu_model=M,price=USD_PER_NODE_H,delay=DURATION,min=A,max=B,initial=C] "
        "(repeatable).", rich_help_panel="Autoscaling", show_default=False)] = None,
    mig: Annotated[list[str] | None, typer.Option(
        "--mig", help="Partition every GPU of a model into MIG slices, MODEL=LAYOUT, e.g. "
        "A100=3g+2g+2g (repeatable). Profiles 1g..4g and 7g in sevenths of a GPU; only "
        "layouts an A100/H100 can create (e.g. 7g, 4g+2g+1g, 3g+3g, 3g+2g+2g). A share "
        "takes the smallest free slice covering it; whole-GPU pods need a 7g slice or an "
        "unpartitioned GPU. Not with --placement fgd or --preemption.",
        rich_help_panel="Input", show_default=False)] = None,
    autoscaler: Annotated[str, typer.Option(
        "--autoscaler", help="Autoscaler for --pool (see 'simulate policies').",
        rich_help_panel="Autoscaling")] = "none",
    autoscale_every: Annotated[str, typer.Option(
        "--autoscale-every", help="Autoscaler tick interval.",
        rich_help_panel="Autoscaling")] = "60s",
    scale_down_after: Annotated[str, typer.Option(
        "--scale-down-after", help="cluster_autoscaler: remove pool nodes empty this long.",
        rich_help_panel="Autoscaling")] = "10m",
    placement: Annotated[str, typer.Option(
        "--placement", help="Comma-separated placement policies (see 'simulate policies').",
        rich_help_panel="Policy")] = "best_fit,dot_product,gpu_packing,random,fgd",
    mode: Annotated[str, typer.Option(
        "--mode", help="inflation (the FGD paper's protocol) or replay (time-based).",
        rich_help_panel="Policy")] = "inflation",
    queue: Annotated[str, typer.Option("--queue", help="Queue order in replay mode.",
                                       rich_help_panel="Policy")] = "fifo",
    preemption: Annotated[str, typer.Option(
        "--preemption", help="Preemption policy in replay mode (see 'simulate policies').",
        rich_help_panel="Policy")] = "none",
    restart: Annotated[str, typer.Option(
        "--restart", help="What an evicted pod still runs: resume (the remaining "
        "duration) or restart (all of it).", rich_help_panel="Policy")] = "resume",
    deadline_factor: Annotated[float | None, typer.Option(
        "--deadline-factor", min=1.0, help="Give pods without a deadline arrival + "
        "FACTOR x duration.", rich_help_panel="Policy")] = None,
    carbon: Annotated[str, typer.Option(
        "--carbon", help="Carbon intensity (gCO2/kWh): 'diurnal' (synthetic) or a ts,value "
        "CSV, hourly from trace start.", rich_help_panel="Policy")] = "diurnal",
    carbon_aware: Annotated[bool, typer.Option(
        "--carbon-aware", help="Hold pods with slack until lower-carbon hours; also runs "
        "without, to report the carbon saved.", rich_help_panel="Policy")] = False,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Runs per policy, seeds "
                                       "SEED..SEED+N-1, averaged.")] = 1,
    target: Annotated[float, typer.Option("--target", min=0.01, help="Inflation: stop when "
                                          "arrived GPU demand reaches this x capacity.")] = 1.3,
    step: Annotated[float, typer.Option("--step", min=0.001, help="Inflation: curve grid "
                                        "step, as a fraction of capacity.")] = 0.01,
    plot: Annotated[Path | None, typer.Option("--plot", dir_okay=False, help="Write the "
                                              "allocation curves (inflation) as an image.",
                                              rich_help_panel="Output")] = None,
    seed: SeedOpt = None,
    mirror: MirrorOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
) -> None:
    """Place a trace's pods with each placement policy and compare the outcomes."""
    engine = check_engine(engine)
    if mode not in ("inflation", "replay"):
        raise typer.BadParameter(f"{mode!r} is not one of inflation, replay",
                                 param_hint="--mode")
    names = _names(placement)
    QUEUE.get(queue)
    PREEMPTION.get(preemption)
    if restart not in get_args(Restart):
        raise typer.BadParameter(f"{restart!r} is not one of resume, restart",
                                 param_hint="--restart")
    intensity = diurnal() if carbon == "diurnal" else read_series(carbon)
    base = SETTINGS.seed if seed is None else seed
    workload = open_trace(trace, seed=base, pai_files=_pai_files(pai_table or []), mirror=mirror)
    if deadline_factor is not None:
        workload = with_deadlines(workload, deadline_factor)
    autoscaling = None
    if pool or nodes == "none":
        if mode != "replay":
            raise InputError("--pool and --nodes none need --mode replay",
                             hint="inflation places pods on a fixed cluster")
        fixed = None if nodes == "none" else open_nodes(nodes, mirror=mirror)
        cluster, layout = with_pools(fixed, [parse_pool(text) for text in pool or []])
        policy = AUTOSCALE.get(autoscaler)
        # only policies with that setting take it (``none`` has no settings)
        accepted = inspect.signature(policy).parameters
        settings = ({"scale_down_after_s": parse_duration(scale_down_after)}
                    if "scale_down_after_s" in accepted else {})
        autoscaling = Autoscaling(layout, policy(**settings),
                                  every_s=parse_duration(autoscale_every))
    else:
        AUTOSCALE.get(autoscaler)
        cluster = open_nodes(nodes, mirror=mirror)
    if mig:
        if preemption != "none":
            raise InputError("--mig cannot be combined with --preemption yet",
                             hint="preemption does not model MIG slices")
        cluster = cluster.with_mig(dict(_mig_layout(text) for text in mig))
    seed_list = list(range(base, base + seeds))
    if mode == "inflation":
        frame, body, curves = _inflation(workload, cluster, names, seed_list, target=target,
                                         step=step, engine=engine, address=ray_address)
        if plot is not None:
            _plot(curves, plot)
    else:
        setup = ReplaySetup(queue, preemption, cast(Restart, restart), intensity,
                            carbon_aware, autoscaling)
        frame, body = _replay(workload, cluster, names, seed_list, setup=setup)
    replay_settings = {"preemption": preemption, "restart": restart,
                       "deadline_factor": deadline_factor, "carbon": intensity.describe(),
                       "carbon_aware": carbon_aware,
                       "pools": [asdict(p) for p in autoscaling.layout.pools] if autoscaling
                       else [],
                       "autoscaler": autoscaler if autoscaling else None,
                       "autoscale_every_s": autoscaling.every_s if autoscaling else None}
    document = {
        **provenance({trace: workload.sha256 or "", nodes: cluster.sha256 or ""}),
        "simulation": {"mode": mode, "placement": names, "queue": queue if mode == "replay"
                       else None, **(replay_settings if mode == "replay" else {}),
                       "seeds": seed_list, "target": target, "step": step,
                       "cluster": cluster.describe(), "n_pods_in_trace": len(workload)},
        "results": frame.to_dicts(), **body,
    }
    emit(Result(frame, document, title=f"{mode} of {trace} on {nodes} "
                f"({cluster.n_nodes:,} nodes, {int(cluster.n_gpu.sum()):,} GPUs)",
                caption=f"mean over {len(seed_list)} seed(s) from {base}"),
         fmt=fmt, output=output)


POLICIES_EPILOG = """\
Examples:

  foresize simulate policies

  foresize simulate policies -f json
"""


@app.command("policies", epilog=POLICIES_EPILOG)
def policies(fmt: FormatOpt = None, output: OutputOpt = None) -> None:
    """List the placement, queue, preemption and autoscaler policies by name."""
    rows = [{"kind": "placement", "name": n} for n in PLACEMENT.names()]
    rows += [{"kind": "queue", "name": n} for n in QUEUE.names()]
    rows += [{"kind": "preemption", "name": n} for n in PREEMPTION.names()]
    rows += [{"kind": "autoscaler", "name": n} for n in AUTOSCALE.names()]
    frame = pl.DataFrame(rows)
    emit(Result(frame, {"policies": rows}, title="Simulator policies"), fmt=fmt, output=output)

app.command("autoscale", epilog=autoscale.EPILOG)(autoscale.autoscale)
app.command("vertical", epilog=autoscale.VERTICAL_EPILOG)(autoscale.vertical)
