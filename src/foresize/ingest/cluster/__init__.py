"""Kubernetes cluster mode: discover workloads and read their usage from Prometheus alone.

``discovery`` finds pods, owners, containers and current resources in kube-state-metrics
series; ``read`` reads and pools cAdvisor and DCGM usage per owner; ``client`` is the
HTTP side (deadline, size cap, concurrency, a fast matrix parser).
"""

from foresize.ingest.cluster.discovery import OWNER_KINDS, Scope
from foresize.ingest.cluster.read import ClusterRequest, ClusterTelemetry, read_cluster

__all__ = ["OWNER_KINDS", "ClusterRequest", "ClusterTelemetry", "Scope", "read_cluster"]
