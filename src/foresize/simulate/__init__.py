"""Simulators: ``cluster`` (pods on nodes, node autoscaling) and ``replicas`` (replica scaling)."""
