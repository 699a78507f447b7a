# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Forecasting GenTD26 GPU utilisation: the hybrid against simple anchors
#
# Rolling-origin protocol: the last 30% of each container is the test region, origins
# every 30 steps, horizons 1..30 (57 s steps), refit at every origin. MASE is scaled by
# the in-sample one-step naive error. This is the `gpu` section of
# `foresize evaluate forecast` (which adds the statsforecast/mlforecast anchors when they
# are installed, and the memory, QPS and LoRA panels).

# %%
import os
from pathlib import Path

from foresize.evaluate.anchors import anchors_available
from foresize.evaluate.forecasting import (
    fan_figure,
    horizon_figure,
    metrics_table,
    run_panel,
    subset,
    target_row,
)
from foresize.evaluate.panels import load_panel

SMOKE = int(os.environ["FORESIZE_SMOKE"]) if os.environ.get("FORESIZE_SMOKE") else None
OUT = Path(os.environ.get("FORESIZE_NOTEBOOK_OUT", "notebook-output"))
OUT.mkdir(parents=True, exist_ok=True)

# %%
panel = subset(load_panel("gpu"), SMOKE)
print(f"{panel['series'].n_unique()} containers, {panel.height:,} points")

# %%
anchors = ("sf_naive", "sf_auto_ets") if anchors_available() else ()
ours = ("hybrid", "window_average", "naive") if SMOKE else ("hybrid", "arima", "wavelet",
                                                            "window_average", "naive")
results = run_panel(panel, "gpu", ours=ours, anchors=anchors)
table = metrics_table(results)
table

# %%
target_row(table, anchors)

# %% [markdown]
# Error by horizon, and the hybrid's forecasts with their 80/95% intervals at the last
# origin of three containers.

# %%
horizon_figure(results, "gpu: error by horizon")(OUT / "forecast_gpu_by_horizon.png")
hybrid = next(r for r in results if r.model == "hybrid")
fan_figure(panel, hybrid, "gpu: hybrid at the last origin")(OUT / "forecast_gpu_samples.png")
