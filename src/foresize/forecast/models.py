"""The forecaster registry: every model ``--model`` can name, built from keyword parameters.

It is the single models of ``forecast.registry`` plus ``auto``, which picks among them
per series. ``auto`` imports ``registry``, never this module, so the graph has no cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from foresize.core.registry import Registry
from foresize.forecast.auto import Auto
from foresize.forecast.protocol import Forecaster
from foresize.forecast.registry import SINGLE_MODELS

FORECASTERS: Registry[Callable[..., Forecaster]] = Registry("forecaster")
for _name in SINGLE_MODELS:
    FORECASTERS.add(_name, SINGLE_MODELS.get(_name))
FORECASTERS.add("auto", Auto)


def make_forecaster(name: str, **params: Any) -> Forecaster:
    """A fresh forecaster ``name`` built with ``params``; unknown names list the valid ones."""
    return FORECASTERS.get(name)(**params)
