"""Property tests: every reader and command, on hostile and corrupt input, exits 0, 3 or 4,
prints no traceback, and leaves no file at ``-o`` unless it succeeded.

The default run draws a few hundred cases in all; ``-m slow`` draws ten times more per
test. ``benchmarks/bench_fuzz.py`` runs the same strategies as a campaign with counts.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from tests.fuzz import (
    check,
    fresh_output,
    leftovers,
    openb_pods_csv,
    run_cli,
    telemetry_csv,
    write,
)
from tests.ingest.hostile_server import HostileServer, raw_body

DEFAULT, SLOW = 30, 300
EXAMPLES = [pytest.param(DEFAULT, id="default"),
            pytest.param(SLOW, id="slow", marks=pytest.mark.slow)]

Argv = Callable[[Path, Path], list[str]]
COMMANDS: dict[str, Argv] = {
    "profile telemetry": lambda s, o: ["profile", "telemetry", str(s), "-f", "json", "-o", str(o)],
    "profile ingest": lambda s, o: ["profile", "ingest", str(s), "-o", str(o)],
    "profile phases": lambda s, o: ["profile", "phases", str(s), "-f", "json", "-o", str(o)],
    # --force: a 3-step horizon on a hostile 1-row file is a usage error (2) by design;
    # the data path past that guard is what is fuzzed here
    "forecast run": lambda s, o: ["forecast", "run", str(s), "-m", "naive", "-H", "3",
                                  "--force", "-f", "json", "-o", str(o)],
    "recommend": lambda s, o: ["recommend", str(s), "-f", "json", "-o", str(o)],
    "simulate autoscale": lambda s, o: ["simulate", "autoscale", str(s), "-f", "json", "-o",
                                        str(o)],
    "simulate vertical": lambda s, o: ["simulate", "vertical", str(s), "-f", "csv", "-o",
                                       str(o)],
}


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("examples", EXAMPLES)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_telemetry_commands_on_hostile_csv(command: str, examples: int, tmp_path: Path) -> None:
    argv = COMMANDS[command]

    @_settings(examples)
    @given(telemetry_csv())
    def case(data: bytes) -> None:
        source = write(tmp_path, "t.csv", data)
        target = fresh_output(tmp_path, "out.parquet" if command == "profile ingest"
                              else "out.json")
        check(run_cli(argv(source, target), target), what=f"{command} on {data[:200]!r}")

    case()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("examples", EXAMPLES)
def test_simulate_schedule_on_hostile_pod_lists(examples: int, tmp_path: Path) -> None:
    @_settings(max(examples // 3, 10))
    @given(openb_pods_csv())
    def case(data: bytes) -> None:
        source = write(tmp_path, "pods.csv", data)
        target = fresh_output(tmp_path, "out.json")
        check(run_cli(["simulate", "schedule", "--trace", str(source), "--placement",
                       "best_fit", "--engine", "serial", "-o", str(target)], target),
              what=f"schedule on {data[:200]!r}")

    case()


# --- archives -----------------------------------------------------------------------------

_MEMBER_NAMES = st.one_of(
    st.sampled_from(["t.csv", "../t.csv", "/etc/t.csv", "a/../../t.csv", "./t.csv", "d/t.csv",
                     "d/" * 40 + "t.csv", "t.csv\x00x", ".hidden.csv", "t.txt", ""]),
    st.text(min_size=1, max_size=30),
)
_MEMBER_TYPES = st.sampled_from([tarfile.REGTYPE, tarfile.REGTYPE, tarfile.DIRTYPE,
                                 tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
                                 tarfile.FIFOTYPE])


@st.composite
def crafted_tar(draw: st.DrawFn) -> bytes:
    """A tar.gz with hostile member names, types and payloads, maybe cut short."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for _ in range(draw(st.integers(min_value=0, max_value=4))):
            info = tarfile.TarInfo(draw(_MEMBER_NAMES))
            info.type = draw(_MEMBER_TYPES)
            payload = draw(telemetry_csv()) if info.type == tarfile.REGTYPE else b""
            info.size = len(payload)
            if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = draw(st.sampled_from(["/etc/passwd", "t.csv", "../x"]))
            tar.addfile(info, io.BytesIO(payload) if payload else None)
    data = buffer.getvalue()
    cut = draw(st.integers(min_value=0, max_value=len(data)))
    return data if draw(st.booleans()) else data[:cut]


@pytest.mark.parametrize("examples", EXAMPLES)
def test_profile_telemetry_on_crafted_archives(examples: int, tmp_path: Path) -> None:
    @_settings(examples)
    @given(crafted_tar())
    def case(data: bytes) -> None:
        source = write(tmp_path, "t.tar.gz", data)
        target = fresh_output(tmp_path, "out.json")
        check(run_cli(["profile", "telemetry", str(source), "-o", str(target)], target),
              what=f"archive {data[:100]!r}")

    case()
    assert leftovers(tmp_path) == []


# --- ONNX ---------------------------------------------------------------------------------

_DIMS = st.one_of(st.sampled_from([-5, -1, 0, 1, 2**31, 2**40, 2**62, 2**63 - 1]),
                  st.integers(min_value=1, max_value=64), st.sampled_from(["batch", "seq", ""]))
_OPS = st.sampled_from(["MatMul", "Add", "Relu", "Reshape", "ConstantOfShape", "Expand",
                        "Conv", "Gemm", "Softmax", "Transpose", "Concat", "NoSuchOp"])


@st.composite
def crafted_onnx(draw: st.DrawFn) -> bytes:
    """A small ONNX graph with hostile dims, shape constants, op types and wiring."""
    rank = draw(st.integers(min_value=0, max_value=4))
    inputs = [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT,
                                            [draw(_DIMS) for _ in range(rank)])
              for i in range(2)]
    shape = [draw(st.one_of(st.sampled_from([-1, 0, 10**15, 2**62]), st.integers(1, 16)))
             for _ in range(draw(st.integers(min_value=1, max_value=3)))]
    inits = [helper.make_tensor("shape", TensorProto.INT64, [len(shape)], shape)]
    names = ["x0", "x1", "shape"]
    nodes = []
    for i in range(draw(st.integers(min_value=1, max_value=6))):
        op = draw(_OPS)
        arity = 1 if op in ("Relu", "Softmax", "Transpose", "ConstantOfShape") else 2
        args = [draw(st.sampled_from([*names, f"y{i + 1}"])) for _ in range(arity)]
        nodes.append(helper.make_node(op, args, [f"y{i}"]))
        names.append(f"y{i}")
    graph = helper.make_graph(nodes, "g", inputs,
                              [helper.make_tensor_value_info(names[-1], TensorProto.FLOAT,
                                                             None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    data = model.SerializeToString()
    return data if draw(st.integers(0, 5)) else data[: draw(st.integers(0, len(data)))]


@pytest.mark.parametrize("examples", EXAMPLES)
def test_profile_model_on_crafted_onnx(examples: int, tmp_path: Path) -> None:
    @_settings(examples)
    @given(crafted_onnx())
    def case(data: bytes) -> None:
        source = write(tmp_path, "m.onnx", data)
        target = fresh_output(tmp_path, "out.json")
        outcome = run_cli(["profile", "model", str(source), "-f", "json", "-o", str(target)],
                          target)
        check(outcome, what=f"crafted ONNX ({len(data)} bytes)")

    case()


# --- a hostile Prometheus ------------------------------------------------------------------

_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.integers(),
              st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)


@st.composite
def prometheus_answer(draw: st.DrawFn) -> tuple[int, bytes]:
    """A status and body: a matrix with hostile samples and labels, or any JSON at all."""
    values = draw(st.lists(st.tuples(
        st.one_of(st.floats(), st.integers(min_value=-(2**70), max_value=2**70), _JSON),
        st.one_of(st.sampled_from(["1", "NaN", "+Inf", "abc", ""]), _JSON)), max_size=5))
    labels = draw(st.dictionaries(st.sampled_from(["__name__", "pod", "job", "x"]),
                                  st.one_of(st.text(max_size=5), _JSON), max_size=3))
    matrix = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": labels, "values": [list(v) for v in values]}]}}
    document = draw(st.one_of(st.just(matrix), _JSON))
    body = json.dumps(document).encode()
    if draw(st.integers(0, 6)) == 0:
        body = b"[" * 50_000 + b"]" * 50_000
    return draw(st.sampled_from([200, 200, 200, 400, 401, 500, 302])), body


@pytest.mark.parametrize("examples", EXAMPLES)
def test_profile_telemetry_against_a_hostile_prometheus(examples: int) -> None:
    @_settings(examples)
    @given(prometheus_answer())
    def case(answer: tuple[int, bytes]) -> None:
        status, body = answer
        with HostileServer(raw_body(body, status), max_requests=3) as hostile:
            outcome = run_cli(["profile", "telemetry", hostile.url, "--query", "m",
                               "--since", "1h", "--step", "1m", "--timeout", "20s"])
        check(outcome, what=f"HTTP {status} {body[:200]!r}")

    case()
