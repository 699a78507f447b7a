"""``foresize simulate serve`` end to end on an Azure trace, and every bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from foresize.cli.main import main
from tests.interrupt import interrupt_when

MODEL = str(Path(__file__).resolve().parents[2] / "src/foresize/graph/reference/llama-2-7b.json")


def test_serve_json_states_the_replay_the_replica_and_each_policy(
    mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "serve.json"
    code = main(["simulate", "serve", "azure-llm:code", "--model", MODEL, "--device", "h100",
                 "--mirror", str(mirror), "--rate-scale", "6", "--splice", "2",
                 "--policies", "static,kpa,predictive", "-o", str(target)])
    assert code == 0, capsys.readouterr().err
    doc = json.loads(target.read_text())
    assert doc["replay"] == {"rate_scale": 6.0, "splice": 2, "n_requests": 2 * 8_819,
                             "duration_s": pytest.approx(doc["replay"]["duration_s"])}
    assert doc["replica"]["kv_capacity_tokens"] > 100_000
    assert [r["policy"] for r in doc["results"]] == ["static", "kpa", "predictive", "oracle"]
    for row in doc["results"]:
        assert 0 <= row["attainment"] <= 1
        assert row["gpu_hours"] > 0
        assert row["cost_usd"] == pytest.approx(row["gpu_hours"] * doc["price_per_gpu_h"])
    assert doc["inputs"][0]["sha256"].startswith("54e9a6d2")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "h900"], "Unknown device 'h900'"),
        (["--model", "LLAMA70", "--device", "l4"], "does not fit l4"),
        (["--slo", "ttft=5ms"], "cannot be met even on an idle replica"),
        (["--policies", "hpa,kpaa"], "kpaa"),
    ],
)
def test_bad_input_is_one_line_and_exit_3(
    mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
    message: str,
) -> None:
    args = [MODEL.replace("llama-2-7b", "llama-2-70b") if a == "LLAMA70" else a for a in args]
    out = tmp_path / "never.json"
    base = ["simulate", "serve", "azure-llm:conv", "--model", MODEL, "--mirror", str(mirror)]
    code = main([*base, *args, "-o", str(out)])
    err = capsys.readouterr().err
    # an unknown device or policy name is a usage error (2); a model or SLO that cannot
    # be served is an input error (3)
    assert code == (2 if args[-1] in ("h900", "hpa,kpaa") else 3)
    assert message.lower() in err.lower()
    assert "Traceback" not in err
    assert not out.exists()


def test_a_trace_with_a_zero_token_count_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("time,p,g\n1,10,5\n2,10,0\n")
    code = main(["simulate", "serve", str(trace), "--map",
                 "ts=time,input_tokens=p,output_tokens=g", "--model", MODEL])
    assert code == 3
    assert "row 2: output_tokens = 0" in capsys.readouterr().err


def test_ctrl_c_keeps_the_policies_that_finished(mirror: Path, tmp_path: Path) -> None:
    """A real SIGINT once the oracle and a policy ran: those rows are written, partial."""
    target = tmp_path / "serve.json"
    _, err = interrupt_when(
        ["simulate", "serve", "azure-llm:code", "--model", MODEL, "--device", "h100",
         "--mirror", str(mirror), "--rate-scale", "6", "--splice", "4", "--policies",
         "static,hpa,kpa,keda,predictive,hybrid", "-o", str(target)],
        ready=lambda line: re.match(r"serve runs: 2/7, ", line) is not None,
    )  # readiness: the oracle and one policy done, five to go
    doc = json.loads(target.read_text())
    assert doc["interrupted"] is doc["partial"] is True
    policies = [r["policy"] for r in doc["results"]]
    assert policies[0] == "static"  # the order asked for, the oracle last
    assert policies[-1] == "oracle"
    assert 2 <= len(policies) < 7
    assert re.search(r"^interrupted: [2-6]/7 runs done; the policies whose runs all finished",
                     err, re.M), err
