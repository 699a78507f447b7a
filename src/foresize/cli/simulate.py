"""``foresize simulate``: replay traces through the reference scheduler, compare policies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast, get_args

import typer
from rich.console import RenderableType

from foresize.cli import autoscale, serve
from foresize.cli.checks import parse_checks
from foresize.cli.common import provenance
from foresize.cli.errors import INTERRUPTED
from foresize.cli.options import (
    CheckOpt,
    EngineOpt,
    FormatOpt,
    MirrorOpt,
    OutputOpt,
    RayAddressOpt,
    SeedOpt,
    WideOpt,
    output_file,
)
from foresize.cli.output import SETTINGS, Result, emit, frame_table, info, progress
from foresize.core.errors import PartialInterrupt
from foresize.core.parallel import check_engine

if TYPE_CHECKING:  # the simulator loads numpy and polars when a command runs: --help does not
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


def _mig_layout(text: str) -> tuple[str, tuple[int, ...]]:
    """``A100=3g+2g+2g`` -> ``("A100", (3, 2, 2))`` (the ``--mig`` syntax)."""
    from foresize.simulate.cluster.state import parse_mig

    model, sep, layout = text.partition("=")
    if not sep or not model:
        raise typer.BadParameter(f"{text!r} is not MODEL=LAYOUT, e.g. A100=3g+2g+2g",
                                 param_hint="--mig")
    return model, parse_mig(layout)


def _run_bar(workload: Workload) -> Callable[[str, int], AbstractContextManager[Any]]:
    """A progress bar per replay run, advanced by the engine's clock."""
    import numpy as np

    end = float(np.max(workload.arrival_s + workload.duration_s))

    @contextmanager
    def run_bar(name: str, seed: int) -> Iterator[Callable[[float], None]]:
        with progress(f"replay {name} seed {seed}", round(end)) as bar:
            done = [0.0]

            def tick(now: float) -> None:
                bar.advance(round(now - done[0]))
                done[0] = round(now)

            yield tick

    return run_bar


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
    plot: Annotated[Path | None, typer.Option("--plot", callback=output_file, help="Write the "
                                              "allocation curves (inflation) as an image.",
                                              rich_help_panel="Output")] = None,
    seed: SeedOpt = None,
    mirror: MirrorOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    wide: WideOpt = False,
    checks: CheckOpt = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
) -> None:
    """Place a trace's pods with each placement policy and compare the outcomes."""
    import polars as pl

    from foresize.simulate.cluster.carbon import diurnal, read_series
    from foresize.simulate.cluster.engine import Restart
    from foresize.simulate.cluster.inflation import Summaries, compare_inflation, curves_document
    from foresize.simulate.cluster.preemption import PREEMPTION
    from foresize.simulate.cluster.queue import QUEUE
    from foresize.simulate.cluster.study import (
        ClusterSpec,
        ReplaySetup,
        build_cluster,
        check_placements,
        compare_replays,
        pai_files,
        plot_curves,
    )
    from foresize.simulate.cluster.traces import open_trace, with_deadlines

    engine = check_engine(engine)
    if mode not in ("inflation", "replay"):
        raise typer.BadParameter(f"{mode!r} is not one of inflation, replay",
                                 param_hint="--mode")
    names = check_placements(placement)
    QUEUE.get(queue)
    PREEMPTION.get(preemption)
    if restart not in get_args(Restart):
        raise typer.BadParameter(f"{restart!r} is not one of resume, restart",
                                 param_hint="--restart")
    intensity = diurnal() if carbon == "diurnal" else read_series(carbon)
    base = SETTINGS.seed if seed is None else seed
    workload = open_trace(trace, seed=base, pai_files=pai_files(pai_table or []), mirror=mirror)
    if deadline_factor is not None:
        workload = with_deadlines(workload, deadline_factor)
    spec = ClusterSpec(nodes, tuple(pool or ()), autoscaler, autoscale_every, scale_down_after,
                       dict(_mig_layout(text) for text in mig or []))
    cluster, autoscaling = build_cluster(spec, mode=mode, preemption=preemption, mirror=mirror)
    seed_list = list(range(base, base + seeds))
    setup = ReplaySetup(queue, preemption, cast(Restart, restart), intensity, carbon_aware,
                        autoscaling)
    interrupted = False
    if mode == "inflation":
        runs = len(names) * len(seed_list)
        with progress("inflation runs", runs, unit="(policy, seed) runs") as bar:
            try:
                rows, curves = compare_inflation(
                    workload, cluster, names, seed_list, target=target, step=step,
                    engine=engine, address=ray_address, on_run=bar.advance)
            except PartialInterrupt as stop:  # keep the policies whose seeds all finished
                (rows, curves), interrupted = cast(Summaries, stop.partial), True
        frame, body = pl.DataFrame(rows), {"curves": curves_document(curves)}
        if plot is not None and not interrupted:
            plot_curves(curves, plot)
            info(f"wrote {plot}")
    else:
        frame, body = compare_replays(workload, cluster, names, seed_list, setup=setup,
                                      on_run=_run_bar(workload))
    replay_settings = setup.describe(autoscaler, deadline_factor)
    document = {
        **provenance({trace: workload.sha256 or "", nodes: cluster.sha256 or ""}),
        "simulation": {"mode": mode, "placement": names, "queue": queue if mode == "replay"
                       else None, **(replay_settings if mode == "replay" else {}),
                       "seeds": seed_list, "target": target, "step": step,
                       "cluster": cluster.describe(), "n_pods_in_trace": len(workload)},
        "results": frame.to_dicts(), **body,
        "interrupted": interrupted, "partial": interrupted,
    }
    emit(Result(frame, document, title=f"{mode} of {trace} on {nodes} "
                f"({cluster.n_nodes:,} nodes, {int(cluster.n_gpu.sum()):,} GPUs)",
                caption=f"mean over {len(seed_list)} seed(s) from {base}", wide=wide,
                table=_schedule_table), fmt=fmt, output=output,
         checks=() if interrupted else parse_checks(checks))
    if interrupted:
        info(f"interrupted: {bar.done}/{runs} (policy, seed) runs done; the policies whose "
             "seeds all finished kept in the output and marked partial")
        raise typer.Exit(INTERRUPTED)


FIRST = ("policy", "allocated_at_100_frac", "fragmentation_rate_frac", "failed_pods")


def _schedule_table(result: Result) -> RenderableType:
    """The policy and what a person compares first (GPUs allocated at full demand,
    fragmentation, pods that never ran), then the rest as the width allows.
    """
    columns = result.frame.columns
    return frame_table(result, columns=[*(c for c in FIRST if c in columns),
                                        *(c for c in columns if c not in FIRST)])


POLICIES_EPILOG = """\
Examples:

  foresize simulate policies

  foresize simulate policies -f json
"""


@app.command("policies", epilog=POLICIES_EPILOG)
def policies(fmt: FormatOpt = None, output: OutputOpt = None, wide: WideOpt = False) -> None:
    """List the placement, queue, preemption and autoscaler policies by name."""
    import polars as pl

    from foresize.simulate.cluster.autoscaler import AUTOSCALE
    from foresize.simulate.cluster.placement import PLACEMENT
    from foresize.simulate.cluster.preemption import PREEMPTION
    from foresize.simulate.cluster.queue import QUEUE

    rows = [{"kind": "placement", "name": n} for n in PLACEMENT.names()]
    rows += [{"kind": "queue", "name": n} for n in QUEUE.names()]
    rows += [{"kind": "preemption", "name": n} for n in PREEMPTION.names()]
    rows += [{"kind": "autoscaler", "name": n} for n in AUTOSCALE.names()]
    frame = pl.DataFrame(rows)
    emit(Result(frame, {"policies": rows}, title="Simulator policies", wide=wide), fmt=fmt,
         output=output)

app.command("autoscale", epilog=autoscale.EPILOG)(autoscale.autoscale)
app.command("vertical", epilog=autoscale.VERTICAL_EPILOG)(autoscale.vertical)
app.command("serve", epilog=serve.EPILOG)(serve.serve)
