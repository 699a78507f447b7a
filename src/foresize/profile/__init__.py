"""Historic pattern analysis of canonical telemetry."""
