"""Horizontal autoscaling of a replicated service on a demand series (``simulate autoscale``).

``demand`` builds the series (LoRA request concurrency, summed QPS, any telemetry),
``service`` models replicas, start-up, drain, queueing latency and coordination
overhead, ``policies`` holds the scalers (static peak, HPA, predictive, hybrid,
oracle), ``quantile`` the predictive policy's online conditional quantiles
of future need, ``stress`` injects surprises and ``run`` simulates every policy and scores it.
``nodes`` puts replicas on node pools (provisioning delay, prices, spot interruptions) and
``vertical`` resizes a replica's memory or GPU share by phase.
"""
