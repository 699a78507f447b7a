"""Every ``foresize`` command in README.md and examples/README.md runs as written.

The commands are read from the ```bash blocks (``\\`` continuations joined, ``#``
comments dropped) and run in README order, in one scratch folder that holds a link to
``examples/`` (so the README's relative inputs resolve and its ``-o`` outputs land in the
scratch folder; a later example may read an earlier one's output, as a reader following
the README would). Each must exit 0 and write the files its ``-o``/``--plot`` names.

A command the README marks ``# needs: WHAT`` (a running Prometheus, an NVIDIA GPU, torch,
a process id) is not collected, so it is neither run nor counted; the marked ones are
listed by ``test_the_readme_states_how_many_examples_run`` when the count is off.
The README states how many examples the test runs; the test
holds it to that number, so marking an example away shows up in review.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from foresize.cli.main import main

REPO = Path(__file__).resolve().parents[1]
READMES = (REPO / "README.md", REPO / "examples" / "README.md")
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"#\s*needs:\s*(.+)$")
COMMAND = re.compile(r"^((?:[A-Z_]+=\S+\s+)*)foresize\s")
STATED = re.compile(r"runs all (\d+) of them")
OUTPUT_FLAGS = ("-o", "--output", "--plot")


@dataclass(frozen=True)
class Example:
    """One ``foresize`` command of a README, where it stands and what it needs."""

    readme: str
    line: int
    text: str
    needs: str | None

    @property
    def words(self) -> list[str]:
        """The command as a shell would split it, comments dropped."""
        return shlex.split(self.text, comments=True)

    @property
    def env(self) -> dict[str, str]:
        """The ``NAME=VALUE`` assignments before ``foresize``."""
        return dict(w.split("=", 1) for w in self.words[: self.words.index("foresize")])

    @property
    def argv(self) -> list[str]:
        """The arguments after ``foresize``."""
        return self.words[self.words.index("foresize") + 1 :]

    @property
    def outputs(self) -> list[str]:
        """The files the command is asked to write (``-`` is stdout)."""
        argv = self.argv
        return [argv[i + 1] for i, arg in enumerate(argv[:-1])
                if arg in OUTPUT_FLAGS and argv[i + 1] != "-"]

    @property
    def id(self) -> str:
        return f"{self.readme}:{self.line}: {' '.join(self.text.split()[:4])}"


def examples(path: Path) -> Iterator[Example]:
    """The ``foresize`` commands of ``path``'s bash blocks.

    A ``# needs: X`` comment on a line of its own marks every later command of its block;
    at the end of a command's line it marks that command.
    """
    text = path.read_text()
    name = path.relative_to(REPO).as_posix()
    for block in BLOCK.finditer(text):
        first_line = text.count("\n", 0, block.start(1)) + 1
        block_needs: str | None = None
        lines = block.group(1).splitlines()
        i = 0
        while i < len(lines):
            start = i
            command = lines[i]
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            i += 1
            stripped = command.strip()
            marker = MARKER.search(stripped)
            if stripped.startswith("#"):
                block_needs = marker.group(1).strip() if marker else block_needs
                continue
            if COMMAND.match(stripped):
                needs = marker.group(1).strip() if marker else block_needs
                yield Example(name, first_line + start, stripped, needs)


ALL = [example for path in READMES for example in examples(path)]
RUNNABLE = [e for e in ALL if e.needs is None]
MARKED = [e for e in ALL if e.needs is not None]
IN_EXAMPLES = re.compile(r"(?:^|=)(examples/\S+)")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, mirror: Path) -> Path:
    """A fresh folder standing in for the clone's root: ``examples/`` and the mirror."""
    folder = tmp_path_factory.mktemp("readme")
    (folder / "examples").symlink_to(REPO / "examples")
    return folder


def test_the_readme_states_how_many_examples_run() -> None:
    stated = STATED.search(READMES[0].read_text())
    assert stated is not None, "README.md must say how many examples the test runs"
    assert int(stated.group(1)) == len(RUNNABLE), [e.id for e in MARKED]


def test_every_marked_example_says_what_it_needs() -> None:
    assert all(e.needs and len(e.needs) > 2 for e in MARKED)
    assert len(MARKED) <= 12, "keep the examples that cannot run here few"


def test_every_example_names_files_that_are_bundled() -> None:
    """Marked examples too: what a reader copies must name files the clone has."""
    missing = [f"{e.id}: {m.group(1)}" for e in ALL for word in e.words
               if (m := IN_EXAMPLES.search(word)) and not (REPO / m.group(1)).exists()]
    assert missing == []


@pytest.mark.parametrize("example", RUNNABLE, ids=[e.id for e in RUNNABLE])
def test_readme_example_runs(example: Example, workdir: Path, mirror: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("FORESIZE_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("COLUMNS", "100")
    for name, value in example.env.items():
        monkeypatch.setenv(name, value)
    assert main(example.argv) == 0, example.text
    for output in example.outputs:
        assert (workdir / output).exists(), f"{example.text}: {output} not written"
