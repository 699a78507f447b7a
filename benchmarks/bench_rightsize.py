"""Right-sizing on every panel, each choice made on one panel and reported on the others.

Protocol (``foresize.recommend.rightsize``): per workload with at least 100 history
points, recommend on the first 70 % of its samples and enforce the limit on the last
30 %. Per panel (``foresize.evaluate.rightsize_panels``): slack and violated workloads
for foresize at each risk, the VPA- and KRR-style references, the history max and the
oracle; the calibration check (share of workloads exceeded at risk r within [r/2, 2r],
with its 95 % binomial interval); the frontier ratio (foresize's least slack at VPA's
count of violated workloads, over VPA's slack; target <= 0.7); and whether the default
dominates VPA; for resources that only throttle, the requests judged as requests
(``request_view``); and the hindsight bound on both (``peak_bound``: the least slack at
VPA's count for limits never below the history peak). Then the leave-one-panel-out
table: the strategy's variant chosen on each panel, reported on every other. The GPU
sharing analysis on the duty cycles closes.

Run: ``FORESIZE_DATA_MIRROR=... python benchmarks/bench_rightsize.py [--panels ...]``
(deterministic: the synthetic fleets are seeded; about a minute).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import polars as pl

from foresize.core.metrics import PERCENT_CAP
from foresize.evaluate.common import read_table
from foresize.evaluate.rightsize_panels import (
    DEFAULT_CHOSEN_ON,
    DEFAULT_VARIANT,
    FRONTIER_TARGET,
    VARIANTS,
    ceiling_table,
    evaluate_panel,
    leave_one_panel_out,
    load_panels,
    reference_scores,
    request_view,
    unseen_growth,
)
from foresize.evaluate.rightsizing import sharing_table
from foresize.recommend.choices import MIN_POINTS
from foresize.recommend.strategies.base import DEFAULT_RISK, units_for
from foresize.recommend.strategies.foresize import (
    DEFAULT_MAX_CHANCE,
    DEFAULT_SHARE,
    GAP_SHARES,
    MIN_WORKLOADS,
    SMALL_FLEET_SPLITS,
)

DEFAULT_MIRROR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "alibaba-clusterdata"


def main() -> None:
    os.environ.setdefault("FORESIZE_DATA_MIRROR", str(DEFAULT_MIRROR))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", nargs="+", default=None)
    args = parser.parse_args()
    pl.Config.set_tbl_rows(100).set_tbl_cols(20).set_tbl_width_chars(160)
    pl.Config.set_float_precision(3).set_tbl_hide_dataframe_shape(True)
    panels = load_panels(args.panels)
    print(
        f"default variant {DEFAULT_VARIANT!r} (spread share {DEFAULT_SHARE}, risk spent by "
        f"cost, no workload's own chance above {DEFAULT_MAX_CHANCE:g}), chosen on "
        f"{DEFAULT_CHOSEN_ON} (least frontier ratio there; 'learned' variants pick the "
        f"share per fleet from {GAP_SHARES}); default risk {DEFAULT_RISK} for every "
        "resource, chosen on pod_memory_util (the least-slack standard risk that violates "
        "no more containers than VPA there)"
    )
    print(
        f"constants not fitted to any panel: {MIN_POINTS} samples per workload (KRR's "
        f"points_required), fleets under {MIN_WORKLOADS} workloads calibrated on the splits "
        f"{SMALL_FLEET_SPLITS}, percentages capped at {PERCENT_CAP:g} (physical)"
    )
    results = {}
    for panel in panels:
        refs = reference_scores(panel)
        for variant in VARIANTS:
            results[(panel.name, variant)] = evaluate_panel(panel, variant, references=refs)
        result = results[(panel.name, DEFAULT_VARIANT)]
        print(f"\n== {panel.name} ({panel.metric}, {panel.source}): {DEFAULT_VARIANT}")
        print(result.table())
        print(result.calibration())
        beyond, n, seen = unseen_growth(panel)
        print(
            f"{beyond} of {n} workloads outgrew, in the judged period, the most any window "
            f"of the fleet's histories grew (+{seen:.1%}): {beyond / n:.1%} of the fleet "
            "jumped as no history had shown"
        )
        s = result.summary()
        bound = s["bound_ratio"]
        print(
            f"frontier: slack at VPA's {s['vpa_violated']} violated = "
            f"{s['frontier_ratio']:.3f} x VPA's (target <= 0.7: "
            f"{'met' if s['frontier_met'] else 'NOT met'}); default (risk "
            f"{s['default_risk']:g}) {s['slack']:.3f} / {s['violated']} vs VPA "
            f"{s['vpa_slack']:.3f} / {s['vpa_violated']}: "
            f"{'dominates' if s['dominates_vpa'] else 'does NOT dominate'}"
        )
        print(
            f"bound: limits never below the history peak reach at best {bound:.3f} x "
            f"VPA's slack at its {s['vpa_violated']} violated, in hindsight"
            + (": the frontier target is out of reach" if bound > FRONTIER_TARGET else "")
            + ("; no such strategy dominates VPA" if bound >= 1.0 else "")
        )
        if units_for(panel.metric).kind != "memory":
            print("throttle-only resource: VPA and KRR set no limit, so here are the requests")
            print(request_view(panel))
    print("\n== summary, default variant")
    print(pl.DataFrame([results[(p.name, DEFAULT_VARIANT)].summary() for p in panels]))
    print("\n== every variant on every panel (frontier ratio / dominates / calibrated)")
    print(pl.DataFrame([r.summary() for r in results.values()]).select(
        "panel", "variant", "frontier_ratio", "dominates_vpa", "calibrated", "slack", "violated"
    ))  # fmt: skip
    print("\n== leave one panel out: variant chosen on one panel, reported on the others")
    print(leave_one_panel_out(panels, results))
    print(
        f"\n== a ceiling on each workload's own chance (--max-chance): the default "
        f"({DEFAULT_MAX_CHANCE:g}) against 2 x risk, the calibration band's upper edge "
        "(slack / violated; in_band: the share violated within [r/2, 2r])"
    )
    print(ceiling_table([results[(p.name, DEFAULT_VARIANT)] for p in panels]))
    if args.panels is None or "pod_gpu_duty_cycle" in args.panels:
        print("\nGPU sharing on pod_gpu_duty_cycle (milli-GPU)")
        print(sharing_table(read_table("alibaba-gentd26:gpu_duty_cycle")))


if __name__ == "__main__":
    main()
