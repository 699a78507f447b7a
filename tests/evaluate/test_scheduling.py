"""The FGD authors' published medians: the table the report and benchmark read."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from foresize.evaluate.scheduling import PAPER_AT_100, POLICIES

REPO = Path(__file__).resolve().parents[2]
EXTRACT = REPO / "datasets" / "fgd-paper-gpuspec.csv"


def _table_script() -> ModuleType:
    """benchmarks/fgd_paper_table.py: medians and markdown from the extract."""
    spec = importlib.util.spec_from_file_location(
        "fgd_paper_table", REPO / "benchmarks" / "fgd_paper_table.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extract_holds_ten_seeds_per_variant_and_policy() -> None:
    with EXTRACT.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 120
    seen = {(r["workload"], r["policy"], int(r["seed"])) for r in rows}
    assert len(seen) == 120
    assert {s for _, _, s in seen} == set(range(42, 52))
    for r in rows:  # the curves never go down as demand arrives
        values = [float(r[c]) for c in ("at90", "at100", "at110", "at130")]
        assert values == sorted(values), r


def test_gpuspec_medians_match_the_extract() -> None:
    medians = _table_script().medians(EXTRACT)
    assert set(medians) == {"openb:gpuspec10", "openb:gpuspec33"}
    for trace, by_policy in medians.items():
        assert PAPER_AT_100[trace] == pytest.approx(by_policy, abs=1e-9)
    # the middle two of ten, read off the authors' file: FGD on gpuspec10 (seeds 46 and 44
    # at 100 %: 94.69, 94.71), GPU packing on gpuspec33 (seeds 51 and 44: 82.32, 82.35)
    assert medians["openb:gpuspec10"]["fgd"] == pytest.approx(94.70)
    assert medians["openb:gpuspec33"]["gpu_packing"] == pytest.approx(82.335)


def test_reference_markdown_holds_the_computed_tables() -> None:
    text = (REPO / "datasets" / "fgd-paper-reference.md").read_text()
    assert _table_script().markdown(EXTRACT) in text


def test_every_trace_has_every_paper_policy() -> None:
    for by_policy in PAPER_AT_100.values():
        assert set(POLICIES) <= set(by_policy)
        assert set(by_policy) == set(PAPER_AT_100["openb:default"])
