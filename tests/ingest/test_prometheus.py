"""The Prometheus source against a real Prometheus server on loopback.

One server per session holds three real GenTD26 GPU duty-cycle series (backfilled with
promtool), a few constructed series for the NaN and collision cases, and the live
gauges of an exporter it scrapes every second. A bearer-token proxy in front of it
checks authentication.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from foresize.cli.main import main
from foresize.core.errors import InputError, InsufficientDataError
from foresize.ingest.alibaba.gentd26 import read_gentd26
from foresize.ingest.prometheus import (
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    open_prometheus,
    parse_prometheus_source,
    plan_pages,
    read_prometheus,
)
from foresize.ingest.report import IngestReport
from tests.ingest import hostile_server, prom_server
from tests.ingest.hostile_server import HostileServer
from tests.ingest.prom_server import Series

STEP_S = 57  # GenTD26 samples every 57 s, on one grid for all containers
TOKEN = "s3cret-token"
LINE_TOKEN = "SECRET-LINE-ONE\nSECRET-LINE-TWO"
ECHOED_TOKEN = "echoed-secret-0123456789"
# every secret any test here sends: no captured output may hold one of them
SECRETS = (TOKEN, *LINE_TOKEN.splitlines(), ECHOED_TOKEN)
LIVE = {"web-0": 12.5, "web-1": 87.25}
NAN, INF = float("nan"), float("inf")


@dataclass(frozen=True, slots=True)
class Server:
    url: str  # prometheus://127.0.0.1:PORT
    proxy: str  # http://127.0.0.1:PORT/prom, wants Bearer TOKEN
    exporter: str  # 127.0.0.1:PORT, the scraped exporter
    silent: int  # a port that never answers
    original: pl.DataFrame  # the backfilled GenTD26 series as read_gentd26 gives them
    t0: datetime
    t1: datetime


def _pick(frame: pl.DataFrame) -> pl.DataFrame:
    """Two day-long containers and one that starts and stops mid-trace."""
    sizes = frame.group_by("workload").len().sort("workload")
    full = sizes.filter(pl.col("len") == 1441)["workload"][:2].to_list()
    partial = sizes.filter(pl.col("len") == 607)["workload"][:1].to_list()
    return frame.filter(pl.col("workload").is_in([*full, *partial]))


def _grid(t0: datetime, values: list[float]) -> list[tuple[int, float]]:
    start = int(t0.timestamp())
    return [(start + i * STEP_S, v) for i, v in enumerate(values)]


def _backfill(original: pl.DataFrame, t0: datetime) -> str:
    real = [
        Series("pod_gpu_duty_cycle", {"pod": pod, "namespace": "gentd26"},
               [(int(ts.timestamp()), v) for ts, v in group.select("ts", "value").iter_rows()])
        for (pod,), group in original.group_by("workload", maintain_order=True)
    ]
    made = [
        Series("foresize_special", {"pod": "special"}, _grid(t0, [1, NAN, 2, INF, 3, -INF])),
        Series("foresize_twin", {"pod": "special"}, _grid(t0, [7])),
        Series("foresize_collide", {"pod": "p", "container": "a"}, _grid(t0, [1, 2, 3])),
        Series("foresize_collide", {"pod": "p", "container": "b"}, _grid(t0, [4, 5, 6])),
    ]
    return prom_server.openmetrics([*real, *made])


@pytest.fixture(scope="session")
def server(gentd26_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    frame, _ = read_gentd26(gentd26_dir / "pod_gpu_duty_cycle_anon.tar.gz")
    original = _pick(frame)
    t0, t1 = original["ts"].min(), original["ts"].max()
    assert isinstance(t0, datetime)
    assert isinstance(t1, datetime)
    with contextlib.ExitStack() as stack:
        exporter = prom_server.start_exporter(stack, LIVE)
        http = prom_server.start_prometheus(
            stack, tmp_path_factory.mktemp("prometheus"), backfill=_backfill(original, t0),
            targets=[exporter],
        )
        proxy = prom_server.start_proxy(stack, http, prefix="/prom", token=TOKEN)
        yield Server(http.replace("http://", "prometheus://"), proxy, exporter,
                     prom_server.silent_port(stack), original, t0, t1)


@pytest.fixture(autouse=True)
def _no_secret_in_any_output(request: pytest.FixtureRequest,
                             monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Grep every output of every test here for the tokens: what a test read with
    ``capsys``/``capfd`` and what it left in the report sections.
    """
    seen: list[str] = []
    original = pytest.CaptureFixture.readouterr

    def readouterr(self: pytest.CaptureFixture[str]) -> Any:
        captured = original(self)
        seen.extend(str(part) for part in captured)
        return captured

    monkeypatch.setattr(pytest.CaptureFixture, "readouterr", readouterr)
    yield
    seen.extend(text for _, _, text in request.node._report_sections)
    for text in seen:
        for secret in SECRETS:
            assert secret not in text, f"a token reached the output: {text[:300]!r}"


def _read(server: Server, query: str, **kwargs: Any) -> tuple[pl.DataFrame, IngestReport]:
    """Read from the server over the backfilled window on the trace's grid, by default."""
    options = {"start": server.t0, "end": server.t1, "step_s": STEP_S, **kwargs}
    return read_prometheus(server.url, query, **options)


def _one_line_naming(exc: pytest.ExceptionInfo[Exception], url: str) -> str:
    message = str(exc.value)
    assert "\n" not in message
    assert url.rstrip("/") in message
    return message


# --- reading real data back ------------------------------------------------------------


def test_real_gentd26_series_read_back_exactly(server: Server) -> None:
    frame, report = read_prometheus(server.url, "pod_gpu_duty_cycle", start=server.t0,
                                    end=server.t1, step_s=STEP_S, metric="gpu_util_pct")
    assert_frame_equal(frame, server.original)
    assert report.rows_in == report.rows_out == server.original.height == 1441 * 2 + 607
    assert report.dropped == {}
    assert report.n_series == 3
    assert "workload = label pod; metric = 'gpu_util_pct'" in report.notes
    assert "labels left out of the series key: namespace" in report.notes


def test_open_prometheus_reads_the_window_before_until(server: Server) -> None:
    frame, _ = open_prometheus(server.url, query="pod_gpu_duty_cycle",
                               since_s=(server.t1 - server.t0).total_seconds(),
                               until=server.t1, step_s=STEP_S, mapping=None,
                               metric="gpu_util_pct")
    assert_frame_equal(frame, server.original)


@pytest.mark.parametrize("max_points", [1440, 100, 7])
def test_paged_reads_equal_one_page(server: Server, max_points: int) -> None:
    whole, _ = _read(server, "pod_gpu_duty_cycle")
    paged, report = _read(server, "pod_gpu_duty_cycle", max_points=max_points)
    assert_frame_equal(paged, whole)
    pages = -(-1441 // max_points)
    assert any(f"3 series in {pages:,} request(s)" in note for note in report.notes)


def test_a_window_over_the_server_limit_is_paged(server: Server) -> None:
    """A day at 1 s is 82,000 points per series: one request is refused, pages are not."""
    with pytest.raises(InputError, match=r"HTTP 400.*11,000 points") as exc:
        _read(server, "pod_gpu_duty_cycle", step_s=1, max_points=100_000)
    _one_line_naming(exc, server.url)
    frame, report = _read(server, "pod_gpu_duty_cycle", step_s=1, metric="gpu_util_pct")
    assert report.dropped == {}
    on_grid = frame.filter(((pl.col("ts") - server.t0).dt.total_seconds() % STEP_S) == 0)
    assert_frame_equal(on_grid, server.original)
    # each sample answers the evaluations in the 30 s lookback after it, up to the window's end
    answers = (server.t1 - pl.col("ts")).dt.total_seconds().clip(upper_bound=30) + 1
    assert frame.height == server.original.select(answers.sum()).item()


# --- label mapping -----------------------------------------------------------------------


def test_mapping_fills_workload_and_tenant(server: Server) -> None:
    frame, report = _read(server, "pod_gpu_duty_cycle",
                          mapping={"workload": "pod", "tenant": "namespace"})
    assert set(frame["tenant"]) == {"gentd26"}
    assert set(frame["metric"]) == {"pod_gpu_duty_cycle"}
    assert set(frame["workload"]) == set(server.original["workload"])
    assert "workload = label pod; metric = __name__" in report.notes


def test_colliding_series_name_the_label_to_add(server: Server) -> None:
    with pytest.raises(InputError) as exc:
        _read(server, "foresize_collide")
    message = _one_line_naming(exc, server.url)
    assert "2 series map to workload 'p' and metric 'foresize_collide'" in message
    assert "differ in label 'container'" in message
    assert "--map workload=pod+container" in message
    frame, _ = _read(server, "foresize_collide", mapping={"workload": "pod+container"})
    assert frame.group_by("workload", maintain_order=True).agg("value").to_dict(
        as_series=False) == {"workload": ["p/a", "p/b"], "value": [[1, 2, 3], [4, 5, 6]]}


def test_as_metric_merging_two_names_is_a_collision(server: Server) -> None:
    with pytest.raises(InputError, match="differ in label '__name__'; drop --as-metric"):
        _read(server, '{pod="special"}', metric="x")


def test_series_without_a_mapped_label_are_dropped_and_counted(server: Server) -> None:
    frame, report = _read(server, '{__name__=~"foresize_special|foresize_collide"}',
                          mapping={"workload": "container"})
    assert set(frame["workload"]) == {"a", "b"}
    assert report.dropped == {"missing_key": 6}
    assert any("1 series lack a mapped label" in n for n in report.notes)


def test_a_label_no_series_has_is_an_error(server: Server) -> None:
    with pytest.raises(InputError, match=r"--map workload=podd: no series has label 'podd' "
                                         r"\(labels: __name__, namespace, pod\)"):
        _read(server, "pod_gpu_duty_cycle", mapping={"workload": "podd"})


def test_ts_and_value_cannot_be_mapped(server: Server) -> None:
    with pytest.raises(InputError, match="carries its own ts and value"):
        _read(server, "pod_gpu_duty_cycle", mapping={"ts": "time"})


def test_nameless_series_need_as_metric_and_render_their_labels(server: Server) -> None:
    query = 'label_replace(vector(1), "zone", "z1", "", "")'
    with pytest.raises(InputError, match=r"series \{zone=z1\} has no metric name.*--as-metric"):
        _read(server, query)
    frame, _ = _read(server, query, metric="ones", end=server.t0 + timedelta(seconds=5 * STEP_S))
    assert frame["workload"].to_list() == ["{zone=z1}"] * 6
    assert set(frame["metric"]) == {"ones"}


def test_nan_and_infinite_values_are_dropped_and_counted(server: Server) -> None:
    frame, report = _read(server, "foresize_special")
    assert frame["value"].to_list() == [1.0, 2.0, 3.0]
    assert report.rows_in == 6
    assert report.dropped == {"nan_value": 1, "infinite_value": 2}


# --- errors: one line, naming the URL ----------------------------------------------------


def test_server_down() -> None:
    url = f"prometheus://127.0.0.1:{prom_server.free_port()}"
    with pytest.raises(InputError, match="connection refused; is Prometheus running") as exc:
        read_prometheus(url, "up", start=datetime.now(UTC) - timedelta(hours=1),
                        end=datetime.now(UTC), step_s=60)
    _one_line_naming(exc, url)


def test_bad_query_quotes_prometheus(server: Server) -> None:
    with pytest.raises(InputError, match=r"query rejected \(HTTP 400\): .*parse error") as exc:
        _read(server, "sum(")
    _one_line_naming(exc, server.url)


def test_empty_result_is_insufficient_data(server: Server) -> None:
    with pytest.raises(InsufficientDataError, match="no series matched 'no_such_metric'") as exc:
        _read(server, "no_such_metric")
    _one_line_naming(exc, server.url)
    assert exc.value.exit_code == 4


def test_wrong_path_prefix(server: Server) -> None:
    with pytest.raises(InputError, match=r"no Prometheus API .*HTTP 404") as exc:
        read_prometheus(server.url + "/nope", "up", start=server.t0, end=server.t1,
                        step_s=STEP_S)
    _one_line_naming(exc, server.url + "/nope")


def test_timeout(server: Server) -> None:
    url = f"prometheus://127.0.0.1:{server.silent}"
    with pytest.raises(InputError, match=r"no answer within 0.3 s") as exc:
        read_prometheus(url, "up", start=server.t0, end=server.t1, step_s=STEP_S, timeout_s=0.3)
    _one_line_naming(exc, url)


def test_a_sign_in_page_is_not_a_prometheus_answer(server: Server) -> None:
    url = server.proxy.removesuffix("/prom")
    with pytest.raises(InputError, match=r"not a Prometheus API response \(got '<!doctype html>"
                                         r"<html><title>Sign in.*path prefix$") as exc:
        read_prometheus(url, "up", start=server.t0, end=server.t1, step_s=STEP_S)
    _one_line_naming(exc, url)


def test_an_exporter_has_no_query_api(server: Server) -> None:
    url = f"http://{server.exporter}"
    with pytest.raises(InputError, match=r"no Prometheus API at /api/v1/query_range") as exc:
        read_prometheus(url, "up", start=server.t0, end=server.t1, step_s=STEP_S)
    _one_line_naming(exc, url)


# --- authentication ---------------------------------------------------------------------


def test_missing_token_says_which_variable_to_set(server: Server) -> None:
    with pytest.raises(InputError, match=rf"HTTP 401.*wants a bearer token; set {TOKEN_ENV} "
                                         rf"or {TOKEN_FILE_ENV}") as exc:
        read_prometheus(server.proxy, "up", start=server.t0, end=server.t1, step_s=STEP_S)
    _one_line_naming(exc, server.proxy)


def test_wrong_token_is_refused_without_echoing_it(server: Server) -> None:
    with pytest.raises(InputError, match=r"HTTP 403.*token was refused") as exc:
        read_prometheus(server.proxy, "up", start=server.t0, end=server.t1, step_s=STEP_S,
                        token="not-the-token")
    assert "not-the-token" not in _one_line_naming(exc, server.proxy)


def test_token_from_env_through_a_path_prefix(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    frame, _ = open_prometheus(server.proxy, query="pod_gpu_duty_cycle", until=server.t1,
                               since_s=(server.t1 - server.t0).total_seconds(), step_s=STEP_S,
                               metric="gpu_util_pct")
    assert_frame_equal(frame, server.original)


def test_token_from_file(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.setenv(TOKEN_FILE_ENV, str(token_file))
    frame, _ = open_prometheus(server.proxy, query="foresize_special", until=server.t1,
                               since_s=(server.t1 - server.t0).total_seconds(), step_s=STEP_S)
    assert frame["value"].to_list() == [1.0, 2.0, 3.0]
    monkeypatch.setenv(TOKEN_FILE_ENV, str(tmp_path / "missing"))
    with pytest.raises(InputError, match=f"{TOKEN_FILE_ENV}=.*missing: cannot read the token"):
        open_prometheus(server.proxy, query="up", since_s=60, step_s=STEP_S)


@pytest.mark.parametrize(("options", "problem"), [
    ({"step_s": 0}, "the step must be at least 1 ms"),
    ({"step_s": float("nan")}, "the step must be at least 1 ms"),
    ({"end": datetime(2020, 1, 1, tzinfo=UTC)}, r"the window ends \(2020-01-01T00:00:00Z\) "
                                               r"before it starts \(2022-01-01T00:00:00Z\)"),
    ({"mapping": {"workload": "pod+"}}, "expected LABEL or LABEL[+]LABEL"),
    ({"url": "ftp://host"}, "not a Prometheus URL"),
])
def test_bad_arguments_fail_before_any_request(options: dict[str, Any], problem: str) -> None:
    """The port is closed: reaching it would say 'connection refused' instead."""
    arguments = {"url": f"prometheus://127.0.0.1:{prom_server.free_port()}", "query": "up",
                 "start": datetime(2022, 1, 1, tzinfo=UTC), "end": datetime(2022, 1, 2),
                 "step_s": 60, **options}
    with pytest.raises(InputError, match=problem):
        read_prometheus(**arguments)


def test_a_source_without_query_is_an_error() -> None:
    with pytest.raises(InputError, match="needs --query"):
        open_prometheus("prometheus://127.0.0.1:9", query=None, since_s=60, step_s=60)


# --- sources and pages (no server) -----------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("prometheus://prom.example", "http://prom.example:9090"),
    ("prometheus://127.0.0.1:19090/prefix/", "http://127.0.0.1:19090/prefix"),
    ("prometheus://[::1]:9090", "http://[::1]:9090"),
    ("https://prom.example/api-proxy", "https://prom.example/api-proxy"),
    ("http://prom.example:8080", "http://prom.example:8080"),
    ("telemetry.csv", None),
    ("data/t.parquet", None),
    ("gentd26:gpu_duty_cycle", None),
])
def test_parse_prometheus_source(text: str, expected: str | None) -> None:
    assert parse_prometheus_source(text) == expected


@pytest.mark.parametrize(("text", "problem"), [
    ("prometheus://", "no host"),
    ("prometheus://user:hunter2@prom.example", "credentials in the URL are not supported"),
    ("prometheus://prom.example?x=1", r"takes no '\?query'"),
    ("prometheus://prom.example:99999", "bad port"),
])
def test_bad_prometheus_sources(text: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as exc:
        parse_prometheus_source(text)
    assert "hunter2" not in str(exc.value)


@pytest.mark.parametrize(("n_points", "max_points"), [(1, 1), (10, 1), (10, 3), (10, 10),
                                                      (11, 10), (11_000, 11_000), (25, 7)])
@pytest.mark.parametrize("ragged_end", [0, 13])
def test_pages_cover_the_grid_once(n_points: int, max_points: int, ragged_end: int) -> None:
    start, step = 1_662_858_720_000, 57_000
    end = start + (n_points - 1) * step + ragged_end
    pages = plan_pages(start, end, step, max_points)
    grid = [t for first, last in pages for t in range(first, last + 1, step)]
    assert grid == list(range(start, end + 1, step))
    assert all((last - first) // step + 1 <= max_points for first, last in pages)
    assert len(pages) == -(-n_points // max_points)


# --- live scraping (last: Prometheus' first scrape comes ~5 s after start) ----------


def test_live_scrape_of_an_exporter(server: Server) -> None:
    deadline = time.monotonic() + 20
    while True:
        now = datetime.now(UTC)
        with contextlib.suppress(InsufficientDataError):
            frame, report = read_prometheus(server.url, "foresize_live_gpu_util_pct",
                                            start=now - timedelta(seconds=30), end=now,
                                            step_s=1)
            if frame.group_by("workload").len().filter(pl.col("len") >= 3).height == len(LIVE):
                break
        assert time.monotonic() < deadline, "the exporter was not scraped within 20 s"
        time.sleep(0.5)
    got = frame.group_by("workload").agg(pl.col("value").unique()).sort("workload")
    assert got.to_dict(as_series=False) == {"workload": list(LIVE),
                                            "value": [[v] for v in LIVE.values()]}
    assert set(frame["metric"]) == {"foresize_live_gpu_util_pct"}
    assert "labels left out of the series key: instance, job" in report.notes


def test_default_workload_falls_back_to_job_and_instance(server: Server) -> None:
    now = datetime.now(UTC)
    frame, _ = read_prometheus(server.url, 'up{job="exporter"}', step_s=1,
                               start=now - timedelta(seconds=5), end=now)
    assert set(frame["workload"]) == {f"exporter/{server.exporter}"}
    assert set(frame["metric"]) == {"up"}
    assert set(frame["value"]) == {1.0}


# --- through the CLI ----------------------------------------------------------------------


UNTIL_SPELLINGS = {  # one instant, as a user may write it (--until is read as Prometheus does)
    "naive ISO, taken as UTC": lambda t: t.strftime("%Y-%m-%dT%H:%M:%S"),
    "RFC 3339 Z": lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"),
    "RFC 3339 +05:30": lambda t: t.astimezone(timezone(timedelta(hours=5, minutes=30)))
    .isoformat(),
    "Unix seconds": lambda t: str(int(t.timestamp())),
}


@pytest.mark.parametrize("spelling", list(UNTIL_SPELLINGS))
def test_profile_telemetry_reads_a_prometheus_source(
    server: Server, capsys: pytest.CaptureFixture[str], spelling: str
) -> None:
    since = int((server.t1 - server.t0).total_seconds())
    code = main(["profile", "telemetry", server.url, "--query", "pod_gpu_duty_cycle",
                 "--since", f"{since}s", "--until", UNTIL_SPELLINGS[spelling](server.t1),
                 "--step", f"{STEP_S}s", "--as-metric", "gpu_util_pct", "-f", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    profiles = {p["workload"]: p for p in json.loads(out)["profiles"]}
    expected = server.original.group_by("workload").agg(pl.col("value").mean(), pl.len())
    assert len(profiles) == expected.height == 3
    for workload, mean, n in expected.iter_rows():
        assert profiles[workload]["n_samples"] == n
        assert profiles[workload]["mean"] == pytest.approx(mean)
    # without --query the source is a whole cluster (#21); this server has no
    # kube-state-metrics, which the one-line error says, pointing at --query
    code = main(["profile", "telemetry", server.url, "--since", "1h"])
    assert code == 4
    err = capsys.readouterr().err
    assert "no kube_pod_owner series in the window: kube-state-metrics is not scraped" in err
    assert "--query 'PROMQL'" in err


def test_an_until_that_is_not_a_time_is_a_usage_error(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["profile", "telemetry", server.url, "--query", "up", "--until", "tuesday"])
    assert code == 2
    assert "--until 'tuesday' is not a time: give RFC 3339" in capsys.readouterr().err


# --- secrets and a hostile server ---------------------------------------------------------


def _cli(url: str, *extra: str) -> list[str]:
    return ["profile", "telemetry", url, "--query", "up", "--since", "1h", "--step", "1m",
            *extra]


@pytest.mark.parametrize("where", ["env", "file"])
@pytest.mark.parametrize("token", [LINE_TOKEN, "SECRET-LINE-ONE\r\nSECRET-LINE-TWO",
                                   "SECRET-LINE-ONE\x07SECRET-LINE-TWO"])
def test_a_token_with_control_characters_is_refused_unquoted(
    where: str, token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(TOKEN_FILE_ENV, raising=False)
    if where == "env":
        monkeypatch.setenv(TOKEN_ENV, token)
    else:
        (tmp_path / "token").write_text(token)
        monkeypatch.setenv(TOKEN_FILE_ENV, str(tmp_path / "token"))
    code = main(_cli(f"prometheus://127.0.0.1:{prom_server.free_port()}"))
    err = capsys.readouterr().err
    assert code == 3, err
    assert "the bearer token holds a" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("status", [400, 200, 500])
def test_a_server_echoing_the_header_never_gets_it_printed(
    status: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(TOKEN_ENV, ECHOED_TOKEN)
    with HostileServer(hostile_server.echo_authorization(status)) as hostile:
        code = main(_cli(hostile.url))
        assert hostile.seen_headers[0]["Authorization"] == f"Bearer {ECHOED_TOKEN}"
    err = capsys.readouterr().err
    assert code == 3, err
    assert "***" in err


@pytest.mark.parametrize(("values", "problem"), [
    ([[1e400, "1"]], "not a time"),
    ([[1e20, "1"]], "not a time"),
    ([[-1e12, "1"]], "not a time"),
    ([["abc", "1"]], "not a time"),
    ([[1, "1", 3]], "not a Prometheus matrix"),
    ([None], "not a Prometheus matrix"),
])
def test_absurd_samples_are_input_errors(values: list[Any], problem: str) -> None:
    answer = json.dumps(hostile_server.matrix(values)).replace("Infinity", "1e400")
    with HostileServer(hostile_server.raw_body(answer.encode())) as hostile, \
            pytest.raises(InputError, match=problem):
        read_prometheus(hostile.url, "m", start=datetime(2024, 1, 1), end=datetime(2024, 1, 2),
                        step_s=3600)


def test_nesting_thousands_deep_is_not_a_prometheus_answer() -> None:
    body = b"[" * 200_000 + b"]" * 200_000
    with HostileServer(hostile_server.raw_body(body)) as hostile, \
            pytest.raises(InputError, match="not a Prometheus API response"):
        read_prometheus(hostile.url, "m", start=datetime(2024, 1, 1), end=datetime(2024, 1, 2),
                        step_s=3600)


def test_a_dripping_server_is_cut_at_the_deadline() -> None:
    with HostileServer(hostile_server.drip(0.2)) as hostile:
        started = time.monotonic()
        with pytest.raises(InputError, match=r"no complete answer within the --timeout of 1 s"):
            read_prometheus(hostile.url, "m", start=datetime(2024, 1, 1),
                            end=datetime(2024, 1, 2), step_s=3600, deadline_s=1)
        assert time.monotonic() - started < 5


def test_answers_beyond_the_byte_cap_are_refused() -> None:
    values = [[1_700_000_000 + i, "1"] for i in range(1000)]
    with HostileServer(hostile_server.json_body(hostile_server.matrix(values))) as hostile, \
            pytest.raises(InputError, match="the answers exceed the cap of 1,000 bytes"):
        read_prometheus(hostile.url, "m", start=datetime(2024, 1, 1), end=datetime(2024, 1, 2),
                        step_s=3600, max_bytes=1000)


def test_a_window_of_millions_of_requests_is_refused_before_the_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with HostileServer(hostile_server.json_body(hostile_server.matrix([]))) as hostile:
        code = main(["profile", "telemetry", hostile.url, "--query", "up", "--since", "365d",
                     "--step", "1ms"])
        assert hostile.seen_headers == []
    err = capsys.readouterr().err
    assert code == 3
    assert "2,866,910 requests of at most 11,000 points; the cap is 1,000" in err
