"""Which workloads a cluster runs, from kube-state-metrics series alone.

Cluster mode needs no Kubernetes API (so it works against Thanos, Mimir or
VictoriaMetrics as well as a plain Prometheus): kube-state-metrics already exports the
pods, their owners and their containers' requests and limits as series. Each query here
is an *instant* query of ``last_over_time(METRIC[window])`` at the window's end, which
returns every series seen anywhere in the window once, however many days it spans:

* ``kube_pod_owner`` gives each pod's owner; ``kube_replicaset_owner`` lifts a
  ReplicaSet to its Deployment and ``kube_job_owner`` a Job to its CronJob, so the pods
  of every ReplicaSet hash of a Deployment (rollouts) and of every run of a CronJob
  belong to one workload. A pod without an owner is its own workload (kind ``Pod``).
* ``kube_pod_container_info`` lists the containers of each pod.
* ``kube_pod_container_resource_requests`` / ``_limits`` give the current requests and
  limits (``cpu`` in cores, ``memory`` in bytes, ``nvidia_com_gpu`` in devices); where
  pods of one owner disagree (mid-rollout), the newest pod's value (``kube_pod_created``)
  is the current one.
* ``kube_pod_labels`` (``label_<name>``) answers ``--selector``.

Workload identity is ``namespace/Kind/name/container`` (``cluster/`` first with
``--cluster-label``), as DESIGN.md names it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from foresize.core.errors import InsufficientDataError, UsageError
from foresize.ingest.cluster.client import Client

OWNER_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod")
NO_OWNER = "<none>"
GPU_RESOURCE = "nvidia_com_gpu"
_SELECTOR_TERM = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")
_REGEX_SPECIAL = frozenset(".^$*+?()[]{}|\\")
_LABEL_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")
# what each kube-state-metrics series tells cluster mode, for the error when one is missing
MEANING = {
    "kube_pod_owner": "which workload owns each pod",
    "kube_pod_container_info": "which containers each pod runs",
}


@dataclass(frozen=True, slots=True)
class Scope:
    """Which part of the cluster to read: namespace globs, owner kinds, a pod selector."""

    namespaces: tuple[str, ...] = ()
    owner_kinds: tuple[str, ...] = ()
    selector: str | None = None
    cluster_label: str | None = None

    def check(self) -> None:
        """Reject an unknown owner kind or a malformed selector before any request."""
        by_lower = {k.lower(): k for k in OWNER_KINDS}
        for kind in self.owner_kinds:
            if kind.lower() not in by_lower:
                raise UsageError(f"--owner-kind {kind!r} is not one of {', '.join(OWNER_KINDS)}")
        selector_matchers(self.selector)
        if self.cluster_label is not None and not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*",
                                                                self.cluster_label):
            raise UsageError(f"--cluster-label {self.cluster_label!r} is not a label name")

    def to_dict(self) -> dict[str, object]:
        """The scope as the plan records it."""
        return {"namespaces": list(self.namespaces), "owner_kinds": sorted(self.kinds),
                "selector": self.selector, "cluster_label": self.cluster_label}

    @property
    def kinds(self) -> set[str]:
        """The owner kinds asked for, in their canonical spelling (empty: all)."""
        by_lower = {k.lower(): k for k in OWNER_KINDS}
        return {by_lower[k.lower()] for k in self.owner_kinds}

    @property
    def keys(self) -> tuple[str, ...]:
        """Labels that name a namespace: the cluster label (if any) and ``namespace``."""
        return (self.cluster_label, "namespace") if self.cluster_label else ("namespace",)


def regex_escape(text: str) -> str:
    """``text`` as a literal in an RE2 pattern."""
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in text)


def promql_string(text: str) -> str:
    """``text`` inside a double-quoted PromQL string literal."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def glob_regex(patterns: Sequence[str]) -> str:
    """Globs (``*``, ``?``, ``[...]``) as one RE2 alternation for ``=~`` (Prometheus
    anchors it at both ends).
    """
    parts = []
    for pattern in patterns:
        out, i = [], 0
        while i < len(pattern):
            char = pattern[i]
            close = pattern.find("]", i + 2) if char == "[" else -1
            if char == "*":
                out.append(".*")
            elif char == "?":
                out.append(".")
            elif close > 0:
                body = pattern[i + 1:close]
                out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
                i = close
            else:
                out.append(regex_escape(char))
            i += 1
        parts.append("".join(out))
    return "|".join(parts)


def selector_matchers(selector: str | None) -> list[str]:
    """``app=web,tier!=db`` as ``kube_pod_labels`` matchers: ``label_app="web"``, ..."""
    if not selector:
        return []
    matchers = []
    for term in selector.split(","):
        match = _SELECTOR_TERM.match(term)
        if match is None:
            raise UsageError(f"--selector {selector!r}: {term.strip()!r} is not KEY=VALUE or "
                             "KEY!=VALUE")
        key, op, value = match.groups()
        label = "label_" + _LABEL_UNSAFE.sub("_", key.rsplit("/", 1)[-1])
        matchers.append(f'{label}{"!=" if op == "!=" else "="}"{promql_string(value)}"')
    return matchers


def namespace_matcher(scope: Scope) -> str:
    """The ``namespace=~`` matcher of the scope ('' when every namespace is read)."""
    if not scope.namespaces:
        return ""
    return f'namespace=~"{promql_string(glob_regex(scope.namespaces))}"'


def _last(client: Client, metric: str, matchers: Sequence[str], *, window_s: int,
          at_s: float) -> list[tuple[dict[str, str], float]]:
    inner = ",".join(m for m in matchers if m)
    return client.instant(f"last_over_time({metric}{{{inner}}}[{window_s}s])", at_s=at_s)


def discover(client: Client, scope: Scope, *, start_s: float, end_s: float) -> pl.DataFrame:
    """One row per (pod, container) in scope, with its owner and current resources.

    Columns: the scope's namespace keys, ``pod``, ``container``, ``owner_kind``,
    ``owner_name``, ``created`` (epoch s or null), ``running`` (seen at the window's
    end), ``{cpu,memory,gpu}_{request,limit}``. Raises ``InsufficientDataError`` naming the
    kube-state-metrics series that is missing and what it means, or the namespace that
    holds no pods.
    """
    scope.check()
    window_s = max(1, round(end_s - start_s))
    ns = namespace_matcher(scope)
    keys = list(scope.keys)
    calls = {
        "owner": lambda: _last(client, "kube_pod_owner", [ns], window_s=window_s, at_s=end_s),
        "rs": lambda: _last(client, "kube_replicaset_owner", [ns], window_s=window_s, at_s=end_s),
        "job": lambda: _last(client, "kube_job_owner", [ns], window_s=window_s, at_s=end_s),
        "info": lambda: _last(client, "kube_pod_container_info", [ns], window_s=window_s,
                              at_s=end_s),
        "requests": lambda: _last(client, "kube_pod_container_resource_requests", [ns],
                                  window_s=window_s, at_s=end_s),
        "limits": lambda: _last(client, "kube_pod_container_resource_limits", [ns],
                                window_s=window_s, at_s=end_s),
        "created": lambda: _last(client, "kube_pod_created", [ns], window_s=window_s,
                                 at_s=end_s),
        "running": lambda: client.instant(
            f"kube_pod_owner{{{ns}}}" if ns else "kube_pod_owner", at_s=end_s),
        "labels": lambda: _last(client, "kube_pod_labels",
                                [ns, *selector_matchers(scope.selector)],
                                window_s=window_s, at_s=end_s) if scope.selector else [],
    }
    answers = dict(zip(calls, client.run_all(list(calls.values())), strict=True))
    for name, metric in (("owner", "kube_pod_owner"), ("info", "kube_pod_container_info")):
        if not answers[name]:
            _missing(client, scope, metric, ns, window_s=window_s, at_s=end_s)
    pods = _owners(answers["owner"], answers["rs"], answers["job"], keys)
    containers = _table([{**_pick(lab, [*keys, "pod", "container"])} for lab, _ in answers["info"]],
                        [*keys, "pod", "container"]).unique()
    frame = containers.join(pods, on=[*keys, "pod"], how="inner")
    if scope.selector:
        chosen = _table([_pick(lab, [*keys, "pod"]) for lab, _ in answers["labels"]],
                        [*keys, "pod"]).unique()
        frame = frame.join(chosen, on=[*keys, "pod"], how="semi")
    if scope.kinds:
        frame = frame.filter(pl.col("owner_kind").is_in(sorted(scope.kinds)))
    created = _table([{**_pick(lab, [*keys, "pod"]), "created": value}
                      for lab, value in answers["created"]], [*keys, "pod"], extra="created")
    running = _table([_pick(lab, [*keys, "pod"]) for lab, _ in answers["running"]],
                     [*keys, "pod"]).unique().with_columns(pl.lit(value=True).alias("running"))
    frame = (frame.join(created.unique([*keys, "pod"]), on=[*keys, "pod"], how="left")
             .join(running, on=[*keys, "pod"], how="left")
             .with_columns(pl.col("running").fill_null(value=False)))
    frame = frame.join(_resources(answers["requests"], keys, "request"),
                       on=[*keys, "pod", "container"], how="left")
    frame = frame.join(_resources(answers["limits"], keys, "limit"),
                       on=[*keys, "pod", "container"], how="left")
    _check_namespaces(frame, scope)
    if frame.is_empty():
        raise InsufficientDataError(
            f"{client.name}: no pod in scope ({describe_scope(scope)}) between the window's "
            "start and end", hint="widen --since, --namespace, --owner-kind or --selector")
    return frame.sort([*keys, "owner_kind", "owner_name", "pod", "container"])


def describe_scope(scope: Scope) -> str:
    """The scope in words, for messages."""
    parts = [f"namespace {', '.join(scope.namespaces)}" if scope.namespaces else "all namespaces"]
    if scope.owner_kinds:
        parts.append(f"owner kind {', '.join(scope.owner_kinds)}")
    if scope.selector:
        parts.append(f"selector {scope.selector}")
    return "; ".join(parts)


def _missing(client: Client, scope: Scope, metric: str, ns: str, *, window_s: int,
             at_s: float) -> None:
    """No series of ``metric`` in scope: say whether it is absent or the namespace empty."""
    if ns and client.instant(f"count(last_over_time({metric}[{window_s}s]))", at_s=at_s):
        present = client.instant(
            f"count by (namespace) (last_over_time({metric}[{window_s}s]))", at_s=at_s)
        names = sorted(lab.get("namespace", "") for lab, _ in present)
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise InsufficientDataError(
            f"{client.name}: namespace {', '.join(scope.namespaces)} has no pods in the window "
            f"(namespaces with pods: {shown})", hint="check --namespace and --since")
    raise InsufficientDataError(
        f"{client.name}: no {metric} series in the window: kube-state-metrics is not "
        f"scraped (or not kept) by this Prometheus, and cluster mode needs it to know "
        f"{MEANING[metric]}",
        hint="scrape kube-state-metrics, or read one query with --query 'PROMQL'")


def _check_namespaces(frame: pl.DataFrame, scope: Scope) -> None:
    """Every --namespace pattern must match a namespace with pods in scope."""
    seen = frame["namespace"].unique().to_list() if frame.height else []
    for pattern in scope.namespaces:
        regex = re.compile(glob_regex([pattern]))
        if not any(regex.fullmatch(name) for name in seen):
            raise InsufficientDataError(
                f"namespace {pattern} has no pods in scope ({describe_scope(scope)}) in the "
                f"window (namespaces with pods: {', '.join(sorted(seen)[:8]) or 'none'})",
                hint="check --namespace, --owner-kind, --selector and --since")


def _pick(labels: dict[str, str], names: Sequence[str]) -> dict[str, str | None]:
    return {name: labels.get(name) for name in names}


def _table(rows: Sequence[Mapping[str, object]], keys: Sequence[str], *,
           extra: str | None = None) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {k: pl.String() for k in keys}
    if extra is not None:
        schema[extra] = pl.Float64()
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(
        schema=schema)


def _owners(owner: list[tuple[dict[str, str], float]], rs: list[tuple[dict[str, str], float]],
            job: list[tuple[dict[str, str], float]], keys: list[str]) -> pl.DataFrame:
    """Each pod's top-level owner: ReplicaSet -> Deployment, Job -> CronJob, none -> Pod."""
    lifted: dict[tuple[str, ...], tuple[str, str]] = {}
    for table, name_label, kind in ((rs, "replicaset", "ReplicaSet"), (job, "job_name", "Job")):
        for labels, _ in table:
            if labels.get("owner_kind", NO_OWNER) not in ("", NO_OWNER):
                key = (*(labels.get(k, "") for k in keys), kind, labels.get(name_label, ""))
                lifted[key] = (labels["owner_kind"], labels.get("owner_name", ""))
    rows = []
    for labels, _ in owner:
        kind, name = labels.get("owner_kind", NO_OWNER), labels.get("owner_name", "")
        if labels.get("owner_is_controller") == "false":
            continue
        if kind in ("", NO_OWNER, "Node"):
            kind, name = "Pod", labels.get("pod", "")
        kind, name = lifted.get((*(labels.get(k, "") for k in keys), kind, name), (kind, name))
        rows.append({**_pick(labels, [*keys, "pod"]), "owner_kind": kind, "owner_name": name})
    return _table(rows, [*keys, "pod", "owner_kind", "owner_name"]).unique([*keys, "pod"])


def _resources(answer: list[tuple[dict[str, str], float]], keys: list[str],
               which: str) -> pl.DataFrame:
    """``{cpu,memory,gpu}_{which}`` per pod and container (cores, bytes, devices)."""
    names = {"cpu": "cpu", "memory": "memory", GPU_RESOURCE: "gpu"}
    rows = [{**_pick(labels, [*keys, "pod", "container"]),
             "resource": names[labels["resource"]], "value": value}
            for labels, value in answer if labels.get("resource") in names]
    columns = [f"{r}_{which}" for r in ("cpu", "memory", "gpu")]
    base = pl.DataFrame(rows, schema={**dict.fromkeys([*keys, "pod", "container"], pl.String),
                                      "resource": pl.String, "value": pl.Float64})
    wide = (base.group_by([*keys, "pod", "container", "resource"]).agg(pl.col("value").max())
            .pivot(on="resource", index=[*keys, "pod", "container"], values="value")
            if base.height else base.drop("resource", "value"))
    wide = wide.rename({r: f"{r}_{which}" for r in ("cpu", "memory", "gpu") if r in wide.columns})
    return wide.with_columns(
        pl.lit(None, pl.Float64).alias(c) for c in columns if c not in wide.columns
    ).select([*keys, "pod", "container", *columns])
