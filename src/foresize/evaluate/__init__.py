"""End-to-end evaluation on public traces: forecasts, right-sizing, autoscaling, scheduling."""
