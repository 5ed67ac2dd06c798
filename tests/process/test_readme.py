"""The README is true: every shell block that can run offline runs, from the repository root
with the venv's `authz`, and exits as the README says (0 unless a preceding `<!-- exit: N -->`
says otherwise; `<!-- not run: REASON -->` skips a block that needs Envoy, Docker or the
foreground). A `console` block's shown output is what the command prints (decision ids
aside). And the claims a review found wrong stay fixed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
MARK = re.compile(r"<!--\s*(not run|exit):\s*(.*?)\s*-->\s*$")
DECISION_ID = re.compile(r"\b[0-9a-f]{32}\b")
ENGINES = ("cel-cpp", "cel-python")


@dataclass(frozen=True)
class Block:
    """A fenced shell block of the README."""

    line: int
    lang: str
    text: str
    mark: str  # "", "not run" or "exit"
    detail: str

    @property
    def exit(self) -> int:
        """The exit status the README promises."""
        return int(self.detail.split()[0]) if self.mark == "exit" else 0


def blocks() -> list[Block]:
    """Every sh, bash and console block, with the marker on the line before it."""
    text = README.read_text()
    found = []
    for match in FENCE.finditer(text):
        lang = match[1]
        if lang not in ("sh", "bash", "console"):
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marked = MARK.search(before)
        line = text[: match.start()].count("\n") + 1
        mark, detail = (marked[1], marked[2]) if marked else ("", "")
        found.append(Block(line, lang, match[2], mark, detail))
    return found


def run(script: str) -> subprocess.CompletedProcess[str]:
    """A shell script from the repository root, the venv's bin first on PATH."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def console(text: str) -> list[tuple[str, str]]:
    """(command, shown output) pairs of a console transcript; `\\` continues a command."""
    pairs: list[tuple[str, str]] = []
    command: list[str] | None = None
    output: list[str] = []
    for line in text.splitlines():
        if line.startswith("$ ") and (command is None or not command[-1].endswith("\\")):
            if command is not None:
                pairs.append(("\n".join(command), "\n".join(output)))
            command, output = [line[2:]], []
        elif command is not None and command[-1].endswith("\\") and not output:
            command.append(line)
        else:
            output.append(line)
    if command is not None:
        pairs.append(("\n".join(command), "\n".join(output)))
    return pairs


def normalised(text: str) -> str:
    return "\n".join(line.rstrip() for line in DECISION_ID.sub("<id>", text).strip().splitlines())


RUNNABLE = [b for b in blocks() if b.mark != "not run"]


def test_the_readme_has_runnable_blocks_and_every_skip_says_why() -> None:
    assert len(RUNNABLE) >= 4
    assert any(b.lang == "console" for b in RUNNABLE)
    for block in blocks():
        if block.mark == "not run":
            assert block.detail, f"README.md:{block.line}: say why the block is not run"


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"line{b.line}" for b in RUNNABLE])
def test_a_readme_block_runs(block: Block) -> None:
    if block.lang != "console":
        ran = run(block.text)
        assert ran.returncode == block.exit, f"README.md:{block.line}\n{ran.stdout}{ran.stderr}"
        return
    pairs = console(block.text)
    assert pairs, f"README.md:{block.line}: a console block without a `$ ` command"
    for index, (command, shown) in enumerate(pairs):
        ran = run(command)
        expected = block.exit if index == len(pairs) - 1 else 0
        assert ran.returncode == expected, f"README.md:{block.line}: {command}\n{ran.stderr}"
        assert normalised(ran.stdout) == normalised(shown), f"README.md:{block.line}: {command}"


def test_a_console_transcript_is_read_as_commands_and_output() -> None:
    assert console("$ a \\\n  b\nout 1\n$ c\n") == [("a \\\n  b", "out 1"), ("c", "")]


# Claims a review of the README found wrong, each held here.


def validate(tmp_path: Path, when: str, engine: str) -> subprocess.CompletedProcess[str]:
    policy = tmp_path / f"{engine}.yaml"
    policy.write_text(
        f"policies:\n  - name: p\n    rules:\n      - {{name: r, when: '{when}', effect: allow}}\n"
    )
    return run(f"authz validate --engine {engine} {policy}")


def test_unknown_functions_read_the_same_on_both_engines(tmp_path: Path) -> None:
    cpp, py = (validate(tmp_path, 'request.path.startswith("/a")', e) for e in ENGINES)
    assert cpp.returncode == py.returncode == 1
    assert "did you mean 'startsWith'" in cpp.stderr
    assert cpp.stderr.replace("cel-cpp", "E") == py.stderr.replace("cel-python", "E")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_list_compared_with_a_string_is_refused(tmp_path: Path, engine: str) -> None:
    refused = validate(tmp_path, 'identity.groups == "ml"', engine)
    assert refused.returncode == 1 and "compares list(string) with string" in refused.stderr


def test_max_tokens_is_null_when_missing(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "policies:\n  - name: p\n    rules:\n"
        "      - {name: uncapped, when: 'llm.max_tokens == null', effect: allow}\n"
    )
    request = (
        '{"method": "POST", "path": "/v1/chat/completions", "context": {"policy": "p"},'
        ' "body": {"model": "m", "messages": []}}'
    )
    ran = run(f"echo '{request}' | authz check --config {policy} --request -")
    assert ran.returncode == 0, ran.stdout + ran.stderr
