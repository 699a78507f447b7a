"""Readers that map telemetry files and public traces into canonical frames."""
