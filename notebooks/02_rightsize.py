# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Right-sizing memory on GenTD26: foresize against VPA and KRR
#
# Protocol: per container with at least 100 history points, recommend from the first 70%
# of its samples and enforce the recommendation as a limit on the last 30%. This is the
# `Right-sizing memory` section of `foresize evaluate rightsize`.

# %%
import os
from pathlib import Path

import polars as pl

from foresize.evaluate import plots
from foresize.evaluate.common import first_workloads, read_table
from foresize.evaluate.rightsizing import (
    sharing_table,
    strategy_scores,
    target_check,
    tradeoff_curves,
)

SMOKE = int(os.environ["FORESIZE_SMOKE"]) if os.environ.get("FORESIZE_SMOKE") else None
OUT = Path(os.environ.get("FORESIZE_NOTEBOOK_OUT", "notebook-output"))
OUT.mkdir(parents=True, exist_ok=True)

# %%
memory = first_workloads(read_table("alibaba-gentd26:memory_util"), SMOKE)
scores = strategy_scores(memory)
pl.DataFrame([s.row() for s in scores])

# %%
target_check(scores)

# %% [markdown]
# Every strategy's knob swept: reserved capacity (relative to the oracle, each
# container's test-period maximum) against the number of containers that hit the limit.

# %%
curves = tradeoff_curves(memory)
frontier = {
    name: (group["reserved/oracle"].to_list(), group["violated"].cast(pl.Float64).to_list())
    for (name,), group in curves.sort("reserved/oracle").group_by(["curve"], maintain_order=True)
}
plots.lines(OUT / "rightsize_frontier.png", frontier, title="Slack vs violations",
            xlabel="reserved / oracle", ylabel="containers violated", markers=True)
curves

# %% [markdown]
# GPU duty cycles are too spiky to size a request from: which workloads can share a GPU?

# %%
sharing_table(first_workloads(read_table("alibaba-gentd26:gpu_duty_cycle"), SMOKE))
