# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Autoscaling on real GenTD26 demand: static, HPA, predictive, hybrid, oracle
#
# LoRA request concurrency per minute (one request per replica) with a start-up delay of
# two steps. Replica-hours are compared with the zero-delay oracle, the lower bound. This
# is the LoRA section of `foresize evaluate autoscale`.

# %%
import os
from pathlib import Path

import numpy as np

from foresize.evaluate import plots
from foresize.evaluate.autoscaling import first_hours, policy_table, service, stress_table
from foresize.ingest.sources import ReadOptions
from foresize.simulate.replicas.demand import open_demand

SMOKE = int(os.environ["FORESIZE_SMOKE"]) if os.environ.get("FORESIZE_SMOKE") else None
OUT = Path(os.environ.get("FORESIZE_NOTEBOOK_OUT", "notebook-output"))
OUT.mkdir(parents=True, exist_ok=True)

# %%
lora = open_demand("alibaba-gentd26:lora", ReadOptions())
if SMOKE:
    lora = first_hours(lora, 12.0 * SMOKE)
print(f"{lora.values.size} minutes, peak concurrency {lora.values.max():g}")

# %%
table, result = policy_table(lora, service(lora, capacity=1.0, startup=2))
table

# %% [markdown]
# Replica curves over the day around the busiest minute.

# %%
busiest = int(lora.values.argmax())
lo = max(0, busiest - 720)
window = slice(lo, lo + 1440)
hours = (np.arange(lora.values.size)[window] / 60).tolist()
curves = {"demand": (hours, lora.values[window].tolist())}
for policy in ("hpa", "predictive", "oracle"):
    curves[policy] = (hours, result.runs[policy].billed[window].tolist())
plots.lines(OUT / "replicas_lora.png", curves, title="LoRA: replicas vs demand",
            xlabel="hours", ylabel="replicas", steps=True)

# %% [markdown]
# The same policies under surprises: a 3x spike at the busiest hour (and, on the full
# series, a forecast blackout and a level shift).

# %%
stress_table(lora)
