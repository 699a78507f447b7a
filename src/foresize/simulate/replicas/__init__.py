"""Replica (horizontal pod) scaling of one service on a demand series (``simulate autoscale``).

Not node scaling: the cluster autoscaler that adds and removes nodes for the scheduler's
pods is :mod:`foresize.simulate.cluster.autoscaler`.

``demand`` builds the series (LoRA request concurrency, summed QPS, any telemetry),
``service`` models replicas, start-up, drain, queueing latency and coordination
overhead, ``scalers`` holds the replica scalers (static peak, HPA, predictive, hybrid,
oracle), ``quantile`` the predictive scaler's online conditional quantiles
of future need, ``stress`` injects surprises and ``run`` simulates every scaler and scores it.
``nodes`` puts replicas on node pools (provisioning delay, prices, spot interruptions) and
``vertical`` resizes a replica's memory or GPU share by phase. An LLM serving engine
(``simulate/serve/``) belongs beside this package and reuses its service and queue model.
"""
