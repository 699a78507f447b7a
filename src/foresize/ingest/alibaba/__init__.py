"""Readers for the public Alibaba cluster traces (github.com/alibaba/clusterdata).

* ``gentd26``: cluster-trace-v2026-GenAI, diffusion-model serving telemetry and requests
* ``openb``: cluster-trace-gpu-v2023, node and pod lists of a GPU-sharing cluster
* ``pai2020``: cluster-trace-gpu-v2020, PAI jobs, tasks, instances and their usage
* ``dlrm2025``: cluster-trace-gpu-v2025, GPU-disaggregated DLRM inference instances

Each reader returns ``(frame, IngestReport)`` and counts every row it drops.
"""

from foresize.ingest.alibaba.dlrm2025 import DLRM_INSTANCES, read_dlrm_instances
from foresize.ingest.alibaba.gentd26 import (
    GENTD26_TABLES,
    LORA_REQUESTS,
    Gentd26Table,
    lora_arrivals,
    read_gentd26,
    read_gentd26_lora,
    read_gentd26_lora_arrivals,
    scan_gentd26,
    table_for,
)
from foresize.ingest.alibaba.openb import (
    OPENB_NODES,
    OPENB_PODS,
    read_openb_nodes,
    read_openb_pods,
)
from foresize.ingest.alibaba.pai2020 import (
    PAI_TABLES,
    PAI_USAGE,
    PaiTable,
    pai_usage,
    read_pai_table,
)

__all__ = [
    "DLRM_INSTANCES",
    "GENTD26_TABLES",
    "LORA_REQUESTS",
    "OPENB_NODES",
    "OPENB_PODS",
    "PAI_TABLES",
    "PAI_USAGE",
    "Gentd26Table",
    "PaiTable",
    "lora_arrivals",
    "pai_usage",
    "read_dlrm_instances",
    "read_gentd26",
    "read_gentd26_lora",
    "read_gentd26_lora_arrivals",
    "read_openb_nodes",
    "read_openb_pods",
    "read_pai_table",
    "scan_gentd26",
    "table_for",
]
