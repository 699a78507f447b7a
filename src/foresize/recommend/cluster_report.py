"""A cluster plan's rows (csv, parquet), its terminal view and its words.

``cluster_rows`` is one row per owner and container in base units, the unit in the
column name (``cpu_request_cores``, ``memory_limit_bytes``); ``cluster_view`` is the
KRR-style table, each cell ``current -> recommended`` with the signed change, the owner
named once per group.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from foresize.recommend.k8s import cpu_quantity, memory_quantity
from foresize.recommend.plan import ClusterSection, ContainerPlan, ResourceChange

ROW_SCHEMA: dict[str, Any] = {
    "cluster": pl.String, "namespace": pl.String, "kind": pl.String, "name": pl.String,
    "container": pl.String, "pods": pl.Int64, "replicas": pl.Int64, "severity": pl.String,
    **{f"{r}_{w}_{s}_{u}": pl.Float64 for r, u in (("cpu", "cores"), ("memory", "bytes"))
       for w in ("request", "limit") for s in ("current", "recommended")},
    "gpus_current": pl.Float64, "gpu_decision": pl.String, "gpu_fraction": pl.Float64,
    "cost_current_per_hour": pl.Float64, "cost_recommended_per_hour": pl.Float64,
    "cost_delta_per_hour": pl.Float64,
}


def _change(container: ContainerPlan, resource: str) -> ResourceChange | None:
    return next((c for c in container.resources if c.resource == resource), None)


def gpu_words(container: ContainerPlan) -> str | None:
    """The GPU decision in a few words: ``2 x a100_80gb``, ``MIG 3g.40gb``, ``250 milli``."""
    gpu = container.gpu
    if gpu is None:
        return None
    placed = gpu.placement
    if placed is None:
        return "no decision"
    if placed.mode == "whole":
        return f"{placed.devices} x {placed.device}"
    if placed.mode == "mig":
        return f"MIG {placed.profile} on {placed.device}"
    return f"{placed.gpu_milli} milli of {placed.device}"


def cluster_rows(section: ClusterSection) -> pl.DataFrame:
    """One row per owner and container, base units (module doc)."""
    rows = []
    for owner in section.owners:
        for container in owner.containers:
            row: dict[str, Any] = {
                "cluster": owner.cluster, "namespace": owner.namespace, "kind": owner.kind,
                "name": owner.name, "container": container.container, "pods": container.pods,
                "replicas": container.replicas, "severity": container.severity,
            }
            for resource, unit in (("cpu", "cores"), ("memory", "bytes")):
                change = _change(container, resource)
                for which in ("request", "limit"):
                    for side in ("current", "recommended"):
                        values = None if change is None else getattr(change, side)
                        row[f"{resource}_{which}_{side}_{unit}"] = (
                            None if values is None else getattr(values, which))
            gpu = container.gpu
            row["gpus_current"] = None if gpu is None else gpu.current_gpus
            row["gpu_decision"] = gpu_words(container)
            row["gpu_fraction"] = (None if gpu is None or gpu.placement is None
                                   else gpu.placement.gpu_fraction)
            cost = container.cost
            row["cost_current_per_hour"] = None if cost is None else cost.current_per_hour
            row["cost_recommended_per_hour"] = (None if cost is None
                                                else cost.recommended_per_hour)
            row["cost_delta_per_hour"] = None if cost is None else cost.delta_per_hour
            rows.append(row)
    return pl.DataFrame(rows, schema=ROW_SCHEMA, orient="row")


def show(resource: str, value: float | None) -> str:
    """A value as the patch writes it: CPU in millicores, memory in Mi or Gi."""
    if value is None:
        return "unset"
    return cpu_quantity(value) if resource == "cpu" else memory_quantity(value)


def cell(change: ResourceChange | None, which: str) -> str:
    """``current -> recommended (±diff)`` for a request or a limit."""
    if change is None:
        return "-"
    old = getattr(change.current, which)
    new = getattr(change.recommended, which)
    if new is None:
        return f"{show(change.resource, old)} (kept)"
    diff = "" if old is None else f" ({'+' if new >= old else '-'}" \
        f"{show(change.resource, abs(new - old))})"
    return f"{show(change.resource, old)} -> {show(change.resource, new)}{diff}"


def cluster_view(section: ClusterSection) -> pl.DataFrame:
    """The KRR-style table: one row per container, the owner named once per group."""
    rows = []
    for owner in section.owners:
        for i, container in enumerate(owner.containers):
            cpu, memory = _change(container, "cpu"), _change(container, "memory")
            cost = container.cost
            rows.append({
                "namespace": owner.namespace if i == 0 else "",
                "owner": f"{owner.kind}/{owner.name}" if i == 0 else "",
                "pods": str(container.pods),
                "container": container.container,
                "severity": container.severity,
                "cpu request": cell(cpu, "request"),
                "cpu limit": cell(cpu, "limit"),
                "memory request": cell(memory, "request"),
                "memory limit": cell(memory, "limit"),
                "gpu": gpu_words(container) or "-",
                "$/h change": "-" if cost is None else f"{cost.delta_per_hour:+.4f}",
            })
    return pl.DataFrame(rows, schema=dict.fromkeys(
        ["namespace", "owner", "pods", "container", "severity", "cpu request", "cpu limit",
         "memory request", "memory limit", "gpu", "$/h change"], pl.String), orient="row")


def cluster_summary(section: ClusterSection) -> str:
    """One stderr line: owners, containers, skipped and the money."""
    n_containers = sum(len(o.containers) for o in section.owners)
    text = (f"{len(section.owners):,} owners, {n_containers:,} containers sized, "
            f"{len(section.skipped):,} skipped")
    if section.delta_per_hour is not None:
        text += (f"; requests cost {section.current_per_hour:,.2f} -> "
                 f"{section.recommended_per_hour:,.2f} {section.currency}/h "
                 f"({section.delta_per_hour:+,.2f})")
    for skipped in section.skipped[:5]:
        text += f"\nskipped {skipped.workload}: {skipped.reasons[0].message}"
    return text


CHART_POINTS = 240
_CHART_W, _CHART_H = 360, 90
_STYLE = """body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 7px}
th{background:#eee;cursor:pointer}td.n{text-align:right}.GOOD{color:#080}.OK{color:#06c}
.WARNING{color:#b60}.CRITICAL{color:#c00;font-weight:bold}figure{display:inline-block;
margin:.4em}figcaption{font-size:12px}svg{background:#fafafa;border:1px solid #ddd}"""
_SORT = """document.querySelectorAll('th').forEach((th,i)=>th.addEventListener('click',()=>{
const t=th.closest('table'),b=t.tBodies[0],rows=[...b.rows];
const k=th.dataset.dir=th.dataset.dir==='a'?'d':'a';
const v=r=>{const c=r.cells[i];
return c.dataset.v!==undefined?parseFloat(c.dataset.v):c.textContent};
rows.sort((x,y)=>{const a=v(x),c=v(y);const r=a<c?-1:a>c?1:0;return k==='a'?r:-r});
rows.forEach(r=>b.appendChild(r))}));"""


def _esc(text: object) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _chart(values: list[tuple[float, float]], old: float | None, new: float | None,
           resource: str, title: str) -> str:
    """An inline SVG: usage (line) against the old (grey dashed) and new (green) request."""
    levels = [v for _, v in values] + [x for x in (old, new) if x is not None]
    top = max(levels, default=1.0) * 1.05 or 1.0
    t0, t1 = values[0][0], values[-1][0]
    span = (t1 - t0) or 1.0

    def xy(t: float, v: float) -> str:
        return f"{(t - t0) / span * _CHART_W:.1f},{_CHART_H - v / top * _CHART_H:.1f}"

    line = " ".join(xy(t, v) for t, v in values)
    marks = []
    for level, colour, dash in ((old, "#888", "4 3"), (new, "#080", "")):
        if level is not None:
            y = _CHART_H - level / top * _CHART_H
            marks.append(f'<line class="{"old" if colour == "#888" else "new"}" x1="0" '
                         f'x2="{_CHART_W}" y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}" '
                         f'stroke-dasharray="{dash}"/>')
    return (f'<figure><svg role="img" width="{_CHART_W}" height="{_CHART_H}" '
            f'aria-label="{_esc(title)}"><polyline fill="none" stroke="#36c" '
            f'points="{line}"/>{"".join(marks)}</svg><figcaption>{_esc(title)}: request '
            f'{_esc(show(resource, old))} &rarr; {_esc(show(resource, new))}</figcaption></figure>')


def _series(usage: pl.DataFrame) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Each workload's usage per metric, cut to ``CHART_POINTS`` buckets (their maxima)."""
    if usage.is_empty():
        return {}
    bucketed = (
        usage.with_columns(pl.col("ts").dt.epoch("s").alias("t"))
        .with_columns(((pl.col("t") - pl.col("t").min().over("workload", "metric"))
                       * CHART_POINTS // ((pl.col("t").max() - pl.col("t").min())
                                          .over("workload", "metric") + 1)).alias("b"))
        .group_by("workload", "metric", "b")
        .agg(pl.col("t").min(), pl.col("value").max())
        .sort("workload", "metric", "t")
        .group_by("workload", "metric", maintain_order=True)
        .agg("t", "value")
    )
    return {(w, m): list(zip(map(float, t), map(float, v), strict=True))
            for w, m, t, v in bucketed.iter_rows()}


def cluster_html(section: ClusterSection, usage: pl.DataFrame, *, title: str) -> str:
    """A self-contained report: a sortable table per owner and container (current vs
    recommended), then each workload's usage against its old and new request.
    Nothing is fetched: styles, script and charts are inline.
    """
    series = _series(usage)
    head = ["namespace", "kind", "owner", "container", "pods", "severity", "cpu request",
            "cpu limit", "memory request", "memory limit", "gpu", "$/h change"]
    rank = {"GOOD": 0, "OK": 1, "WARNING": 2, "CRITICAL": 3}
    body, charts = [], []
    for owner in section.owners:
        for container in owner.containers:
            cpu, memory = _change(container, "cpu"), _change(container, "memory")
            cost = container.cost
            delta = None if cost is None else cost.delta_per_hour
            cells = [
                _esc(owner.namespace), _esc(owner.kind), _esc(owner.name),
                _esc(container.container),
                f'<td class="n" data-v="{container.pods}">{container.pods}</td>',
                f'<td class="{container.severity}" data-v="{rank[container.severity]}">'
                f"{container.severity}</td>",
                *(_esc(cell(c, w)) for c, w in ((cpu, "request"), (cpu, "limit"),
                                                 (memory, "request"), (memory, "limit"))),
                _esc(gpu_words(container) or "-"),
                f'<td class="n" data-v="{delta or 0}">'
                f'{"-" if delta is None else f"{delta:+.4f}"}</td>',
            ]
            body.append("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>"
                                         for c in cells) + "</tr>")
            figures = [
                _chart(series[(container.workload, metric)], change.current.request,
                       change.recommended.request, change.resource,
                       f"{container.workload} {change.resource}")
                for metric, change in (("cpu_cores", cpu), ("mem_bytes", memory))
                if change is not None and series.get((container.workload, metric))
            ]
            if figures:
                charts.append(f'<section class="workload"><h3>{_esc(container.workload)}</h3>'
                              + "".join(figures) + "</section>")
    skipped = "".join(f"<li>{_esc(s.workload)}: {_esc(s.reasons[0].message)}</li>"
                      for s in section.skipped)
    money = ("" if section.delta_per_hour is None else
             f"<p>Requests cost {section.current_per_hour:,.2f} &rarr; "
             f"{section.recommended_per_hour:,.2f} {_esc(section.currency)} per hour "
             f"({section.delta_per_hour:+,.2f}).</p>")
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_esc(title)}</h1><p>{_esc(section.source)}: {_esc(section.start)} to "
        f"{_esc(section.end)}, every {section.step_s:g} s.</p>{money}"
        '<table id="owners"><thead><tr>'
        + "".join(f"<th>{_esc(h)}</th>" for h in head)
        + "</tr></thead><tbody>" + "".join(body) + "</tbody></table>"
        + (f"<h2>Skipped</h2><ul id=\"skipped\">{skipped}</ul>" if skipped else "")
        + "<h2>Usage against the old and new request</h2>" + "".join(charts)
        + f"<script>{_SORT}</script></body></html>\n"
    )
