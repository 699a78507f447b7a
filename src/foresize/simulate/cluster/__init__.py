"""Cluster simulation: pods scheduled onto nodes, and nodes scaled for the pods.

``state`` models nodes (CPU, memory, GPUs shared in milli-GPU, MIG slices), ``workload`` and
``traces`` the pods, ``engine`` the discrete-event replay and ``inflation`` the FGD
paper's protocol. The scheduler's policies, one protocol and one registry per kind:
``queue`` (QUEUE), ``placement`` (PLACEMENT), ``preemption`` (PREEMPTION), and beside
them the node (cluster) autoscaler, ``autoscaler`` (AUTOSCALE), over the node ``pools``.
``metrics`` and ``carbon`` score a run. Replica scaling of a service is
:mod:`foresize.simulate.replicas`, a different thing.
"""
