"""Recommendations: right-sizing, scaling plans, placement and cost."""
