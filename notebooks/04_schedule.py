# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Placement policies under the FGD inflation protocol (openb)
#
# Pods of the openb default trace are drawn with replacement and placed on the 1,213 GPU
# nodes until the arrived GPU demand reaches 130% of capacity (smoke mode: 100%, one seed,
# a coarse grid). The FGD authors' published medians sit beside ours.

# %%
import os
from pathlib import Path

import polars as pl

from foresize.evaluate import plots
from foresize.evaluate.scheduling import PAPER_AT_100, POLICIES
from foresize.simulate.cluster.inflation import compare_inflation
from foresize.simulate.cluster.traces import open_nodes, open_trace

SMOKE = bool(os.environ.get("FORESIZE_SMOKE"))
OUT = Path(os.environ.get("FORESIZE_NOTEBOOK_OUT", "notebook-output"))
OUT.mkdir(parents=True, exist_ok=True)
seeds, target, step = ([0], 1.0, 0.05) if SMOKE else ([0, 1, 2], 1.3, 0.01)

# %%
workload = open_trace("openb:default", seed=0)
cluster = open_nodes("openb:nodes_gpu")
rows, curves = compare_inflation(workload, cluster, list(POLICIES), seeds, target=target,
                                 step=step)
table = pl.DataFrame(rows).with_columns(
    paper_at_100=pl.col("policy").replace_strict(
        {k: v / 100 for k, v in PAPER_AT_100["openb:default"].items()}, default=None
    )
)
table

# %%
plots.lines(
    OUT / "schedule_allocation.png",
    {name: (c.arrived_frac.tolist(), c.allocated_frac.tolist()) for name, c in curves.items()},
    title="Allocated GPU share vs arrived demand (openb)",
    xlabel="arrived GPU demand / capacity", ylabel="allocated / capacity",
)
