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

import onnx
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
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


@st.composite
def insane_onnx(draw: st.DrawFn) -> tuple[bytes, list[str] | int]:
    """A graph with one size no device holds or one shape no op makes, with what foresize
    must say of it: the words its one-line error holds (the node and the tensor), or, for
    a ConstantOfShape within 2^53 elements, the bytes its peak must count (the zeros and
    their Relu, both fp32 and live together).
    """
    kind = draw(st.sampled_from(["negative", "reshape", "fill", "matmul", "cycle"]))
    inits: list[onnx.TensorProto] = []
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])]
    expected: list[str] | int
    if kind == "negative":
        dims = draw(st.lists(st.integers(1, 64), min_size=0, max_size=3))
        bad = draw(st.integers(-(2**63), -1))
        dims.insert(draw(st.integers(0, len(dims))), bad)
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)]
        nodes = [helper.make_node("Relu", ["x"], ["z"], name="act")]
        expected = ["graph input 'x'", f"negative dim ({bad})"]
    elif kind == "reshape":
        shape = draw(st.one_of(
            st.lists(st.integers(2**27, 2**62), min_size=2, max_size=3),
            st.lists(st.integers(-(2**62), -2), min_size=1, max_size=2).map(lambda d: [*d, 4]),
            st.just([-1, -1])))
        inits = [helper.make_tensor("s", TensorProto.INT64, [len(shape)], shape)]
        nodes = [helper.make_node("Reshape", ["x", "s"], ["z"], name="r")]
        expected = ["node 'r' (Reshape)"]
    elif kind == "fill":
        n = draw(st.one_of(st.integers(1, 2**53), st.integers(2**53 + 1, 2**62)))
        inits = [helper.make_tensor("s", TensorProto.INT64, [1], [n])]
        inputs = []  # an input would be live throughout, beside the zeros
        nodes = [helper.make_node("ConstantOfShape", ["s"], ["y"], name="fill"),
                 helper.make_node("Relu", ["y"], ["z"], name="act")]
        expected = 8 * n if n <= 2**53 else ["node 'fill' (ConstantOfShape)", "'y'", "2^53"]
    elif kind == "matmul":
        a, k, b = (draw(st.integers(2**20, 2**26)) for _ in range(3))
        assume(2 * a * k * b > 2**63)
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [a, k]),
                  helper.make_tensor_value_info("w", TensorProto.FLOAT, [k, b])]
        nodes = [helper.make_node("MatMul", ["x", "w"], ["z"], name="mm")]
        expected = ["node 'mm' (MatMul)", "beyond a 64-bit count", f"'x' [{a}, {k}]"]
    else:
        ring = draw(st.integers(1, 5))
        nodes = [helper.make_node("Relu", [f"t{(i - 1) % ring}"], [f"t{i}"], name=f"n{i}")
                 for i in range(ring)]
        nodes.append(helper.make_node("Relu", [f"t{ring - 1}"], ["z"], name="out"))
        expected = ["the graph has a cycle: node", f"reads 't{ring - 1}'"]
    graph = helper.make_graph(nodes, "g", inputs,
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString(), expected


@pytest.mark.parametrize("examples", EXAMPLES)
def test_insane_onnx_sizes_are_named_errors_or_priced(examples: int, tmp_path: Path) -> None:
    """Negative dims, shapes past 2^53 elements, counts past 64 bits and cycles end in
    exit 3 with one line naming the node and the tensor, and nothing written; a
    ConstantOfShape within 2^53 elements is priced as the memory it makes, never 0.
    """
    @_settings(examples)
    @given(insane_onnx())
    def case(drawn: tuple[bytes, list[str] | int]) -> None:
        data, expected = drawn
        source = write(tmp_path, "m.onnx", data)
        target = fresh_output(tmp_path, "out.json")
        outcome = run_cli(["profile", "model", str(source), "-f", "json", "-o", str(target)],
                          target)
        check(outcome, what=f"insane ONNX ({expected})")
        if isinstance(expected, int):
            assert outcome.code == 0, outcome.err
            memory = json.loads(target.read_text())["model"]["inference"]
            assert memory["peak_activation_bytes"] == expected
            return
        assert outcome.code == 3, outcome.err
        error = outcome.err.splitlines()[0]
        assert error.startswith(f"Error: {source}: "), error
        for words in expected:
            assert words in error, error
        assert not target.exists()

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
