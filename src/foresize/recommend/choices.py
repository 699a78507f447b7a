"""Names and defaults of the recommend stage that help texts show, in a module that
imports nothing: ``foresize recommend --help`` prints them without loading numpy and
polars, which the strategies and the planner that use them import.
"""

from __future__ import annotations

#: The right-sizing strategies, in ``STRATEGIES``' order (a test keeps the two equal).
STRATEGY_NAMES = ("foresize", "vpa", "krr", "max")
#: Fewest history samples a workload needs (KRR's ``points_required``; the benchmark
#: protocol asks the same of every strategy).
MIN_POINTS = 100
#: The demand forecaster a scaling plan uses unless told otherwise.
DEFAULT_FORECASTER = "window_average"
