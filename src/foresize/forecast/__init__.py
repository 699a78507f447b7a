"""Forecasting: demand quantiles per series and step, phase by phase.

Every forecaster follows ``protocol.Forecaster`` (fit on a long panel, predict ``h``
steps with intervals) and passes the same rolling-origin ``backtest``.
"""
