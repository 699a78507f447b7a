"""The hostile-input campaign of issue #20: cases, crashes by signature, peak RSS, leftovers.

Runs every command on hypothesis-generated corrupt and hostile files (the strategies of
``tests/fuzz``), crafted archives and ONNX models, a malicious Prometheus on loopback,
plus the named cases of the issue: SIGKILL mid-write and mid-extraction, a file size
limit as a full disk, a gzip bomb, a dripping Prometheus and a dripping dataset download,
absurd timestamps. A crash is an exit code outside {0, 3, 4}, a traceback, or a file left
at ``-o`` after a failure.

    python benchmarks/bench_fuzz.py                 # ~60 cases per family
    python benchmarks/bench_fuzz.py --cases 300     # the long campaign

Prints one table; every number but the cases should be zero.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import resource
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fuzz import (  # noqa: E402  # noqa: E402
    ALLOWED_EXIT,
    Outcome,
    leftovers,
    openb_pods_csv,
    run_cli,
    telemetry_csv,
    write,
)
from tests.fuzz.test_fuzz import (  # noqa: E402
    COMMANDS,
    crafted_onnx,
    crafted_tar,
    prometheus_answer,
)
from tests.ingest.hostile_server import HostileServer, drip, matrix, raw_body  # noqa: E402


class Campaign:
    """Counts cases and crashes by signature."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.cases = 0
        self.crashes: collections.Counter[str] = collections.Counter()
        self.families: collections.Counter[str] = collections.Counter()

    def record(self, family: str, outcome: Outcome, output: Path | None = None) -> None:
        self.cases += 1
        self.families[family] += 1
        if outcome.code not in ALLOWED_EXIT:
            what = outcome.signature or outcome.err[-120:]
            self.crashes[f"{family}: exit {outcome.code}: {what}"] += 1
        elif "Traceback" in outcome.err:
            self.crashes[f"{family}: traceback"] += 1
        elif outcome.code and output is not None and output.exists():
            self.crashes[f"{family}: file left at -o after exit {outcome.code}"] += 1

    def run(self, family: str, argv: list[str], output: Path | None = None) -> None:
        if output is not None:
            output.unlink(missing_ok=True)
        self.record(family, run_cli(argv, output), output)


def _each(strategy: st.SearchStrategy[object], n: int, body: Callable[[object], None]) -> None:
    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def case(value: object) -> None:
        body(value)

    case()


def generated(c: Campaign, n: int) -> None:
    out = c.work / "out.json"
    for name, argv in COMMANDS.items():
        target = c.work / ("out.parquet" if name == "profile ingest" else "out.json")
        _each(telemetry_csv(), n, lambda data, name=name, argv=argv, target=target:
              c.run(name, argv(write(c.work, "t.csv", data), target), target))
    _each(openb_pods_csv(), max(n // 3, 10), lambda data: c.run(
        "simulate schedule", ["simulate", "schedule", "--trace",
                              str(write(c.work, "pods.csv", data)), "--placement", "best_fit",
                              "--engine", "serial", "-o", str(out)], out))
    _each(crafted_tar(), n, lambda data: c.run(
        "archive", ["profile", "telemetry", str(write(c.work, "t.tar.gz", data)), "-o",
                    str(out)], out))
    _each(crafted_onnx(), n, lambda data: c.run(
        "onnx", ["profile", "model", str(write(c.work, "m.onnx", data)), "-o", str(out)], out))

    def prometheus(answer: object) -> None:
        status, body = answer  # type: ignore[misc]
        with HostileServer(raw_body(body, status), max_requests=3) as hostile:
            c.run("prometheus", ["profile", "telemetry", hostile.url, "--query", "m", "--since",
                                 "1h", "--timeout", "20s", "-o", str(out)], out)

    _each(prometheus_answer(), n, prometheus)


def named(c: Campaign) -> None:
    """The issue's own cases, one each."""
    out = c.work / "out.json"
    header = "workload,metric,ts,value\n"
    rows = "".join(f"w,cpu_util_pct,{1_700_000_000 + 60 * i},{i % 5}\n" for i in range(50))
    files = {
        "ts 1e300": header + rows + "w,cpu_util_pct,1e300,1\n",
        "text value": header + rows + "w,cpu_util_pct,1700009000,abc\n",
        "extra field": header + rows + "w,cpu_util_pct,1700009000,1,2\n",
        "empty metrics": "ts,a,b\n" + "".join(f"{1_700_000_000 + 60 * i},,\n" for i in range(9)),
    }
    for label, text in files.items():
        source = write(c.work, "named.csv", text.encode())
        for command in ("profile telemetry", "simulate autoscale", "forecast run"):
            c.run(f"named {label}", COMMANDS[command](source, out), out)
    utf8 = write(c.work, "utf8.csv", (header + rows).encode() + b"w,cpu_util_pct,1,\xff\n")
    for command in ("profile telemetry", "simulate autoscale"):
        c.run("named invalid utf-8 after the first rows", COMMANDS[command](utf8, out), out)
    for label, values in {"1e400": "1e400", "1e20": "1e20", "-1e12": "-1e12"}.items():
        body = json.dumps(matrix([[0, "1"]])).replace("[0,", f"[{values},").encode()
        with HostileServer(raw_body(body)) as hostile:
            c.run(f"named prometheus ts {label}", ["profile", "telemetry", hostile.url,
                                                   "--query", "m", "--since", "1h"])
    with HostileServer(raw_body(b"[" * 200_000 + b"]" * 200_000)) as hostile:
        c.run("named prometheus 200k nested", ["profile", "telemetry", hostile.url, "--query",
                                               "m", "--since", "1h"])
    with HostileServer(drip(0.5)) as hostile:
        started = time.monotonic()
        c.run("named dripping prometheus", ["profile", "telemetry", hostile.url, "--query",
                                            "m", "--since", "1h", "--timeout", "3s"])
        if time.monotonic() - started > 10:
            c.crashes["named dripping prometheus: ran past --timeout"] += 1
    with HostileServer(drip(0.5)) as hostile, _environment(
            FORESIZE_DATA_BASE_URL=hostile.url, FORESIZE_CACHE_DIR=str(c.work / "cache"),
            FORESIZE_DATA_MIRROR=None):
        started = time.monotonic()
        c.run("named dripping download", ["datasets", "fetch", "gentd26:queue_size",
                                          "--timeout", "3s"])
        if time.monotonic() - started > 10:
            c.crashes["named dripping download: ran past --timeout"] += 1
    c.run("named 2.87M requests", ["profile", "telemetry", "prometheus://127.0.0.1:9",
                                   "--query", "m", "--since", "365d", "--step", "1ms"])
    deep = _tar(c.work / "deep.tar.gz", "d/" * 2000 + "t.csv", (header + rows).encode())
    c.run("named 2000-deep member", ["profile", "telemetry", str(deep), "-o", str(out)], out)
    bomb = _tar(c.work / "bomb.tar.gz", "t.csv", b"0" * 300 * 2**20)
    c.run("named gzip bomb", ["profile", "telemetry", str(bomb), "-o", str(out)], out)
    os.environ["FORESIZE_MAX_EXTRACT_BYTES"] = "abc"
    try:
        c.run("named FORESIZE_MAX_EXTRACT_BYTES=abc", ["profile", "telemetry", str(deep)])
    finally:
        del os.environ["FORESIZE_MAX_EXTRACT_BYTES"]
    c.record("named disk full on -o", _disk_full(c.work, write(c.work, "ok.csv",
                                                                (header + rows).encode())))
    _sigkill_mid_write(c)


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    """Set (a value) or unset (None) these variables for the block, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(saved)


def _set_environment(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _tar(path: Path, name: str, payload: bytes) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return path


def _disk_full(work: Path, source: Path) -> Outcome:
    """A 1 MiB file size limit stands in for a full disk (EFBIG instead of ENOSPC); --force
    lets a 30,000-step horizon past the guard on a short history, to write that much.
    """
    code = ("import resource, signal, sys; from foresize.cli.main import main; "
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20)); "
            f"sys.exit(main(['forecast', 'run', {str(source)!r}, '-m', 'naive', '-H', '30000', "
            f"'--force', '-f', 'csv', '-o', {str(work / 'full.csv')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=300)
    return Outcome(done.returncode, done.stdout, done.stderr, (work / "full.csv").exists())


def _sigkill_mid_write(c: Campaign) -> None:
    """SIGKILL a writer mid-``-o``, then check the next run's write removed its temporary."""
    code = ("import os, sys; from foresize.core.io import atomic_write\n"
            "with atomic_write(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'x' * 10**6); os.kill(os.getpid(), 9)")
    subprocess.run([sys.executable, "-c", code, str(c.work / "out.json")], check=False)
    source = write(c.work, "again.csv", b"workload,metric,ts,value\nw,cpu_util_pct,0,1\n")
    c.run("named SIGKILL mid -o, then a rerun", COMMANDS["profile telemetry"](
        source, c.work / "out.json"), c.work / "out.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=60, help="generated cases per family")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder) / "work"
        work.mkdir()
        os.environ["FORESIZE_CACHE_DIR"] = str(Path(folder) / "cache")
        campaign = Campaign(work)
        started = time.monotonic()
        with contextlib.redirect_stderr(io.StringIO()):
            named(campaign)
            generated(campaign, args.cases)
        left = leftovers(Path(folder))
        rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print(f"cases            {campaign.cases:,} in {time.monotonic() - started:.0f} s")
    for family, n in sorted(campaign.families.items()):
        print(f"  {family:<44} {n:>5}")
    print(f"crashes          {sum(campaign.crashes.values())}")
    for signature, n in campaign.crashes.most_common():
        print(f"  {n:>5}  {signature}")
    print(f"peak RSS         {rss:,.0f} MiB (this process and its largest child)")
    print(f"leftovers        {len(left)}")
    for path in left:
        print(f"  {path}")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
