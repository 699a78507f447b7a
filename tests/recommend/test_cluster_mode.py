"""Cluster mode end to end on a real Prometheus backfilled with the sample cluster:
recommendations equal those from the same histories given as a file, one patch per owner
and VerticalPodAutoscalers that validate against the Kubernetes OpenAPI schema, and the
bad-input cases of the CLI.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from foresize.cli.main import main
from foresize.ingest.cluster import ClusterRequest, read_cluster
from foresize.ingest.sources import TelemetrySource, read_canonical
from foresize.recommend.cluster import ClusterPlanRequest, plan_cluster, severity
from foresize.recommend.service import PlanRequest, build_plan
from tests.ingest import prom_server
from tests.ingest.cluster_server import ClusterServer

# the Kubernetes version whose OpenAPI schema (shipped by kubernetes-validate) checks manifests
K8S_VERSION = "1.33.0"
QUANTITY = {"oneOf": [{"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G)?$"},
                      {"type": "integer"}]}
RESOURCES = {"type": "object", "additionalProperties": QUANTITY}
# VerticalPodAutoscaler is a CRD, not in the Kubernetes OpenAPI: its v1 spec fields as the
# VPA API (autoscaling.k8s.io/v1 types) defines them, closed to unknown fields
VPA_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "autoscaling.k8s.io/v1"},
        "kind": {"const": "VerticalPodAutoscaler"},
        "metadata": {"type": "object", "required": ["name", "namespace"],
                     "properties": {"name": {"type": "string",
                                             "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                                    "namespace": {"type": "string"}},
                     "additionalProperties": False},
        "spec": {"type": "object", "required": ["targetRef"], "additionalProperties": False,
                 "properties": {
                     "targetRef": {"type": "object", "required": ["kind", "name"],
                                   "additionalProperties": False,
                                   "properties": {"apiVersion": {"type": "string"},
                                                  "kind": {"type": "string"},
                                                  "name": {"type": "string"}}},
                     "updatePolicy": {"type": "object", "additionalProperties": False,
                                      "properties": {"updateMode": {"enum": [
                                          "Off", "Initial", "Recreate", "Auto"]}}},
                     "resourcePolicy": {"type": "object", "additionalProperties": False,
                                        "properties": {"containerPolicies": {
                                            "type": "array", "items": {
                                                "type": "object", "additionalProperties": False,
                                                "properties": {
                                                    "containerName": {"type": "string"},
                                                    "mode": {"enum": ["Auto", "Off"]},
                                                    "minAllowed": RESOURCES,
                                                    "maxAllowed": RESOURCES,
                                                    "controlledResources": {
                                                        "type": "array",
                                                        "items": {"enum": ["cpu", "memory"]}},
                                                    "controlledValues": {"enum": [
                                                        "RequestsAndLimits", "RequestsOnly"]},
                                                }}}}},
                 }},
    },
}


def _window(server: ClusterServer) -> list[str]:
    return ["--since", f"{server.since_s:g}s", "--until", server.until.strftime(
        "%Y-%m-%dT%H:%M:%S")]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


# --- the equality test -----------------------------------------------------------------


def test_cluster_mode_equals_the_same_histories_given_as_a_file(
    cluster_server: ClusterServer, tmp_path: Path
) -> None:
    read = read_cluster(ClusterRequest(cluster_server.url, since_s=cluster_server.since_s,
                                       until=cluster_server.until))
    plan = plan_cluster(read, ClusterPlanRequest(phases=True), source=cluster_server.url)
    quick = plan_cluster(read, ClusterPlanRequest(), source=cluster_server.url)  # no phases
    path = tmp_path / "histories.parquet"
    cluster_server.cluster.expected().write_parquet(path)
    from_file = read_canonical(TelemetrySource((str(path),))).frame
    compared = 0
    for metric in ("cpu_cores", "mem_bytes", "gpu_mem_bytes", "gpu_util_pct"):
        body = build_plan(from_file, PlanRequest(metric=metric))
        mine = [r for r in plan.recommendations if r.resource == metric]
        assert [r.model_dump() for r in mine] == [r.model_dump() for r in body.recommendations]
        compared += sum(r.status == "ok" for r in mine)
        # by default cluster mode skips the per-phase schedules, and nothing else changes
        fast = [r for r in quick.recommendations if r.resource == metric]
        assert all(r.phases == [] for r in fast)
        assert [r.model_dump(exclude={"phases"}) for r in fast] == [
            r.model_dump(exclude={"phases"}) for r in mine]
    assert any(r.phases for r in plan.recommendations)  # the comparison above saw some
    assert compared == 12 * 2 + 2 * 2  # 12 containers x (cpu, memory), 2 GPU containers
    skipped = {s.workload for s in plan.section.skipped}
    assert skipped == {"team-a/Deployment/short-0/app"}


def test_one_owner_one_entry_with_every_container(cluster_server: ClusterServer) -> None:
    read = read_cluster(ClusterRequest(cluster_server.url, since_s=cluster_server.since_s,
                                       until=cluster_server.until))
    plan = plan_cluster(read, ClusterPlanRequest(), source=cluster_server.url)
    owners = [(o.namespace, o.kind, o.name) for o in plan.section.owners]
    assert len(owners) == len(set(owners))
    web = next(o for o in plan.section.owners if o.name == "deployment-0")
    assert [c.container for c in web.containers] == ["app", "sidecar"]
    assert all({r.resource for r in c.resources} == {"cpu", "memory"} for c in web.containers)
    gpu = next(c for o in plan.section.owners for c in o.containers if c.gpu is not None)
    assert gpu.gpu is not None
    assert gpu.gpu.device == "a100_80gb"
    assert gpu.gpu.placement is not None
    assert gpu.cost is not None
    assert plan.section.delta_per_hour == pytest.approx(
        sum(c.cost.delta_per_hour for o in plan.section.owners for c in o.containers
            if c.cost is not None))


@pytest.mark.parametrize(("current", "recommended", "resource", "grade"), [
    (None, None, "cpu", "GOOD"), (None, 0.5, "cpu", "WARNING"), (1.0, 1.1, "cpu", "GOOD"),
    (1.0, 0.7, "cpu", "OK"), (1.0, 0.4, "cpu", "WARNING"), (1.0, 2.5, "cpu", "CRITICAL"),
    (0.005, 0.012, "cpu", "GOOD"), (2**30, 3 * 2**30, "memory", "CRITICAL"),
])
def test_severity_grades_like_krr(current: float | None, recommended: float | None,
                                  resource: str, grade: str) -> None:
    assert severity(current, recommended, resource) == grade


# --- manifests: valid against the Kubernetes OpenAPI schema ------------------------------


def _base(kind: str, name: str, containers: list[str]) -> dict[str, Any]:
    """A minimal valid object of ``kind`` running ``containers``, to apply a patch to."""
    pod = {"containers": [{"name": c, "image": f"registry.example/{c}:1"} for c in containers]}
    template = {"metadata": {"labels": {"app": name}}, "spec": pod}
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": name}}, "template": template}
    if kind == "StatefulSet":
        spec["serviceName"] = name
    if kind in ("Job", "CronJob"):
        job = {"template": {"spec": {**pod, "restartPolicy": "Never"}}}
        spec = job if kind == "Job" else {"schedule": "0 3 * * *",
                                          "jobTemplate": {"spec": job}}
    if kind == "Pod":
        spec = pod
    api = {"Job": "batch/v1", "CronJob": "batch/v1", "Pod": "v1"}.get(kind, "apps/v1")
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name}, "spec": spec}


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge as the API server does it for these patches: maps merge, the
    ``containers`` list merges by ``name``.
    """
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    if isinstance(base, list) and isinstance(patch, list) and all("name" in i for i in patch):
        by_name = {i["name"]: i for i in base}
        for item in patch:
            by_name[item["name"]] = _merge(by_name.get(item["name"], {}), item)
        return list(by_name.values())
    return patch


def _containers(patch: dict[str, Any]) -> list[dict[str, Any]]:
    spec = patch["spec"]
    spec = spec.get("jobTemplate", {}).get("spec", spec)
    return spec["template"]["spec"]["containers"] if "template" in spec else spec["containers"]


def test_k8s_writes_one_valid_patch_per_owner(cluster_server: ClusterServer, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "patches.yaml"
    code, _, err = run(["recommend", cluster_server.url, *_window(cluster_server),
                        "--namespace", "team-*", "-f", "k8s", "-o", str(out)], capsys)
    assert code == 0, err
    patches = [d for d in yaml.safe_load_all(out.read_text()) if d]
    keys = [(p["kind"], p["metadata"]["namespace"], p["metadata"]["name"]) for p in patches]
    assert len(keys) == len(set(keys))
    assert {k[1] for k in keys} == {"team-a", "team-b"}
    assert {k[0] for k in keys} == {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job"}
    for patch in patches:
        containers = _containers(patch)
        names = [c["name"] for c in containers]
        merged = _merge(_base(patch["kind"], patch["metadata"]["name"], names), patch)
        kubernetes_validate.validate(merged, K8S_VERSION, strict=True)
        for container in containers:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    web = next(p for p in patches if p["metadata"]["name"] == "deployment-0")
    assert [c["name"] for c in _containers(web)] == ["app", "sidecar"]
    text = out.read_text()
    assert "team-a/Deployment/deployment-0: " in text
    assert "skipped team-a/Deployment/short-0/app: cpu: 49 points < 100 required" in text


def test_vpa_objects_are_valid(cluster_server: ClusterServer, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "vpa.yaml"
    code, _, err = run(["recommend", cluster_server.url, *_window(cluster_server),
                        "-f", "vpa", "-o", str(out)], capsys)
    assert code == 0, err
    objects = [d for d in yaml.safe_load_all(out.read_text()) if d]
    assert len(objects) == 10
    for vpa in objects:
        jsonschema.validate(vpa, VPA_SCHEMA)
        assert vpa["spec"]["updatePolicy"]["updateMode"] == "Off"
        target = vpa["spec"]["targetRef"]
        kubernetes_validate.validate(  # the target reference is a valid autoscaling/v1 one
            {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
             "metadata": {"name": "x"}, "spec": {"scaleTargetRef": target, "maxReplicas": 1}},
            K8S_VERSION, strict=True)
        for policy in vpa["spec"]["resourcePolicy"]["containerPolicies"]:
            assert set(policy["minAllowed"]) == set(policy["maxAllowed"]) == {"cpu", "memory"}


def test_json_table_csv_yaml(cluster_server: ClusterServer, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["recommend", cluster_server.url, *_window(cluster_server),
                          "--owner-kind", "StatefulSet", "-f", "json"], capsys)
    assert code == 0, err
    plan = json.loads(out)
    assert plan["schema_version"] == "1.3"
    owners = plan["cluster"]["owners"]
    assert {o["kind"] for o in owners} == {"StatefulSet"}
    assert "1 owners, 1 containers sized" not in err
    code, out, err = run(["recommend", cluster_server.url, *_window(cluster_server),
                          "--owner-kind", "StatefulSet"], capsys)
    assert code == 0, err
    assert "StatefulSet/statefulset-1" in out
    assert re.search(r"\d+m -> \d+m \([+-]\d+m\)", out)
    code, out, _ = run(["recommend", cluster_server.url, *_window(cluster_server),
                        "--owner-kind", "StatefulSet", "-f", "csv"], capsys)
    header = out.splitlines()[0].split(",")
    assert "cpu_request_recommended_cores" in header
    assert "memory_limit_current_bytes" in header
    code, out, _ = run(["recommend", cluster_server.url, *_window(cluster_server),
                        "--owner-kind", "StatefulSet", "-f", "yaml"], capsys)
    assert yaml.safe_load(out)["cluster"]["owners"][0]["kind"] == "StatefulSet"


# --- bad input: one line, non-zero exit, nothing written ----------------------------------


@pytest.mark.parametrize(("extra", "code", "message"), [
    (["--namespace", "nope"], 4, "namespace nope has no pods in the window"),
    (["--until", "2022-01-01T00:00:00"], 4, "no kube_pod_owner series in the window: "
                                            "kube-state-metrics is not scraped"),
    (["--max-response", "1Ki"], 3, "passed the cap of 1.0 KiB"),
    (["--owner-kind", "Rollout"], 2, "--owner-kind 'Rollout' is not one of"),
])
def test_bad_input_writes_nothing(cluster_server: ClusterServer, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str], extra: list[str],
                                  code: int, message: str) -> None:
    out = tmp_path / "patches.yaml"
    args = ["recommend", cluster_server.url, *_window(cluster_server), *extra, "-o", str(out)]
    got, stdout, err = run(args, capsys)
    assert got == code
    assert message in err
    assert stdout == ""
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_unreachable_and_slow_servers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import contextlib

    url = f"prometheus://127.0.0.1:{prom_server.free_port()}"
    code, _, err = run(["recommend", url, "-o", str(tmp_path / "p.yaml")], capsys)
    assert code == 3
    assert "connection refused" in err
    with contextlib.ExitStack() as stack:
        url = f"prometheus://127.0.0.1:{prom_server.silent_port(stack)}"
        code, _, err = run(["recommend", url, "--timeout", "1s", "-o",
                            str(tmp_path / "p.yaml")], capsys)
    assert code == 3
    assert "no complete answer within the --timeout of 1 s" in err
    assert list(tmp_path.iterdir()) == []


# --- the html report, rendered by headless Chromium (Debian's chromium package) ---------


def _render(page: Path) -> str:
    """The DOM after the page's scripts ran, from headless Chromium."""
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("the html report test needs Chromium: apt-get install -y chromium")
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={page.parent / 'profile'}", "--virtual-time-budget=5000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_html_report_renders_in_headless_chromium(
    cluster_server: ClusterServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "report.html"
    code, _, err = run(["recommend", cluster_server.url, *_window(cluster_server),
                        "--namespace", "team-*", "-o", str(page)], capsys)
    assert code == 0, err
    html = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched
    # click the severity header once: rows sort by severity, ascending
    clicked = tmp_path / "clicked.html"
    clicked.write_text(html.replace("</body>", "<script>document.querySelectorAll('#owners th')"
                                               "[5].click()</script></body>"))
    dom = _render(clicked)
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>"
                      r".*?<td class=\"(GOOD|OK|WARNING|CRITICAL)\"", dom)
    assert len(rows) == 8  # containers of the team-* owners
    grades = [r[4] for r in rows]
    order = ["GOOD", "OK", "WARNING", "CRITICAL"]
    assert grades == sorted(grades, key=order.index)
    assert {r[1] for r in rows} == {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job"}
    assert dom.count("<polyline") == 16  # a CPU and a memory chart per container
    assert dom.count('class="old"') == 16
    assert dom.count('class="new"') == 16
    assert "team-a/Deployment/short-0/app" in dom  # listed as skipped
