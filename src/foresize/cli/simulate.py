"""``foresize simulate``: replay traces through the reference scheduler, compare policies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import polars as pl
import typer

from foresize.cli.common import provenance
from foresize.cli.options import FormatOpt, MirrorOpt, OutputOpt, SeedOpt
from foresize.cli.output import SETTINGS, Result, emit, info, progress
from foresize.core.errors import InputError
from foresize.core.io import atomic_write
from foresize.simulate.cluster import Cluster
from foresize.simulate.engine import replay
from foresize.simulate.inflation import InflationCurve, mean_curve, run_inflation
from foresize.simulate.policies.placement import PLACEMENT, fragmentation_of
from foresize.simulate.policies.queue import QUEUE
from foresize.simulate.traces import load_cluster, load_workload
from foresize.simulate.workload import Workload

app = typer.Typer(help="Reference scheduler simulator: replay traces, compare placement "
                  "and queue policies.", no_args_is_help=True)

Mode = Literal["inflation", "replay"]
REPORT_POINTS = (0.9, 1.0, 1.1, 1.3)

SCHEDULE_EPILOG = """\
Examples:

  foresize simulate schedule --placement best_fit,dot_product,fgd --seeds 10

  foresize simulate schedule --trace openb:gpuspec33 --placement fgd -o fgd.json --plot fgd.png

  foresize simulate schedule --mode replay --queue fifo --placement best_fit,fgd
"""


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InputError("--placement names no policy", hint="e.g. --placement best_fit,fgd")
    for name in names:
        PLACEMENT.get(name)  # UnknownNameError with "Did you mean"
    return names


def _inflation(workload: Workload, cluster: Cluster, names: list[str], seeds: list[int], *,
               target: float, step: float) -> tuple[pl.DataFrame, dict[str, Any],
                                                    dict[str, InflationCurve]]:
    frag = fragmentation_of(workload, cluster)
    points = [p for p in REPORT_POINTS if p <= target + 1e-9]
    rows, curves = [], {}
    total = len(names) * len(seeds)
    with progress("inflation runs", total) as bar:
        for name in names:
            runs = []
            for seed in seeds:
                policy = PLACEMENT.get(name)(workload, cluster)
                runs.append(run_inflation(workload, cluster, policy, seed=seed,
                                          target=target, step=step, fragmentation=frag))
                bar.advance()
            curve = curves[name] = mean_curve(runs)
            row: dict[str, Any] = {"policy": name}
            for p in points:
                row[f"allocated_at_{round(p * 100)}_frac"] = curve.at(p)["allocated_frac"]
            end = curve.at(target)
            row["fragmentation_rate_frac"] = curve.at(min(1.0, target))["fragmentation_rate"]
            row["failed_pods"] = end["failed_pods"]
            row["run_s"] = curve.wall_s
            rows.append(row)
    document = {name: {"arrived_frac": c.arrived_frac.tolist(),
                       **{k: getattr(c, k).tolist() for k in
                          ("allocated_frac", "fragmentation_rate", "fragmented_frac",
                           "unallocated_frac", "failed_pods", "failed_gpu_frac")},
                       "n_pods": c.n_pods, "wall_s": c.wall_s}
                for name, c in curves.items()}
    return pl.DataFrame(rows), {"curves": document}, curves


def _replay(workload: Workload, cluster: Cluster, names: list[str], seeds: list[int], *,
            queue: str) -> tuple[pl.DataFrame, dict[str, Any]]:
    order = QUEUE.get(queue)
    rows, runs = [], []
    end = float(np.max(workload.arrival_s + workload.duration_s))
    for name in names:
        summaries = []
        for seed in seeds:
            with progress(f"replay {name} seed {seed}", round(end)) as bar:
                done = [0.0]

                def tick(now: float, bar: Any = bar, done: list[float] = done) -> None:
                    bar.advance(round(now - done[0]))
                    done[0] = round(now)

                result = replay(workload, cluster, PLACEMENT.get(name)(workload, cluster),
                                order(), seed=seed, tick=tick)
            summary = result.summary(workload, cluster)
            summaries.append(summary)
            runs.append({"policy": name, "seed": seed, **summary})
        rows.append({
            "policy": name,
            "wait_mean_s": float(np.mean([s["queueing_delay"]["mean_s"] for s in summaries])),
            "wait_p99_s": float(np.mean([s["queueing_delay"]["p99_s"] for s in summaries])),
            "jct_mean_s": float(np.mean([s["jct"]["mean_s"] for s in summaries])),
            "makespan_s": float(np.mean([s["makespan_s"] for s in summaries])),
            "gpu_util_frac": float(np.mean([s["mean_util"]["gpu"] for s in summaries])),
            "never_fit": summaries[0]["n_never_fit"],
            "unscheduled": float(np.mean([s["n_unscheduled"] for s in summaries])),
            "events_per_s": float(np.mean([s["events_per_s"] for s in summaries])),
        })
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
    trace: Annotated[str, typer.Option("--trace", help="Pod list: openb:NAME or a file.",
                                       rich_help_panel="Input")] = "openb:default",
    nodes: Annotated[str, typer.Option("--nodes", help="Node list: openb:NAME or a file.",
                                       rich_help_panel="Input")] = "openb:nodes_gpu",
    placement: Annotated[str, typer.Option(
        "--placement", help="Comma-separated placement policies (see 'simulate policies').",
        rich_help_panel="Policy")] = "best_fit,dot_product,gpu_packing,random,fgd",
    mode: Annotated[str, typer.Option(
        "--mode", help="inflation (the FGD paper's protocol) or replay (time-based).",
        rich_help_panel="Policy")] = "inflation",
    queue: Annotated[str, typer.Option("--queue", help="Queue order in replay mode.",
                                       rich_help_panel="Policy")] = "fifo",
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
) -> None:
    """Place a trace's pods with each placement policy and compare the outcomes."""
    if mode not in ("inflation", "replay"):
        raise typer.BadParameter(f"{mode!r} is not one of inflation, replay",
                                 param_hint="--mode")
    names = _names(placement)
    QUEUE.get(queue)
    workload, _ = load_workload(trace, mirror=mirror)
    cluster, _ = load_cluster(nodes, mirror=mirror)
    base = SETTINGS.seed if seed is None else seed
    seed_list = list(range(base, base + seeds))
    if mode == "inflation":
        frame, body, curves = _inflation(workload, cluster, names, seed_list,
                                         target=target, step=step)
        if plot is not None:
            _plot(curves, plot)
    else:
        frame, body = _replay(workload, cluster, names, seed_list, queue=queue)
    document = {
        **provenance({trace: workload.sha256 or "", nodes: cluster.sha256 or ""}),
        "simulation": {"mode": mode, "placement": names, "queue": queue if mode == "replay"
                       else None, "seeds": seed_list, "target": target, "step": step,
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
    """List the placement and queue policies by name."""
    rows = [{"kind": "placement", "name": n} for n in PLACEMENT.names()]
    rows += [{"kind": "queue", "name": n} for n in QUEUE.names()]
    frame = pl.DataFrame(rows)
    emit(Result(frame, {"policies": rows}, title="Simulator policies"), fmt=fmt, output=output)
