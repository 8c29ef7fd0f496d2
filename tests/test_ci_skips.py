"""CI's skip audit (.ci/skips.py) on the JUnit XML that real pytest runs write, one per stage."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

TESTS = {
    "test_optional_backends.py": """
import os, pytest
def test_vllm_engine_on_tiny_llava():
    pytest.skip("vllm needs a CUDA GPU")
@pytest.mark.skipif(os.environ["STAGE"] == "1", reason="needs torchvision")
def test_sam():
    pass
""",
    "test_contracts.py": """
import os, pytest
@pytest.mark.parametrize("plugin", ["describer-vllm", "segmenter-sam"])
def test_plugin_keeps_its_role_contract(plugin):
    if plugin == "describer-vllm" or os.environ["STAGE"] == "1":
        pytest.skip("needs " + plugin)
""",
    "test_heavy.py": """
import os, pytest
if os.environ["STAGE"] == "1":
    pytest.skip("needs the heavy stage", allow_module_level=True)
class TestHeavy:
    def test_it(self):
        pass
""",
}


def stage_xml(project: Path, stage: str, extra: dict[str, str] | None = None) -> Path:
    """Run pytest on ``project``'s tests as CI stage ``stage`` writes them: its JUnit XML."""
    tests = project / "tests"
    tests.mkdir(exist_ok=True)
    for name, text in {**TESTS, **(extra or {})}.items():
        (tests / name).write_text(text)
    xml = project / f"stage-{stage}.xml"
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"} | {"STAGE": stage}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--rootdir={project}", f"--junitxml={xml}", "tests"]
    subprocess.run(cmd, cwd=project, env=env, check=True, capture_output=True)
    return xml


@pytest.fixture(scope="module")
def stages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Stage 1 and 2a of the project TESTS (each skip of stage 1 runs in 2a; the vllm ones nowhere)."""
    project = tmp_path_factory.mktemp("project")
    return {stage: stage_xml(project, stage) for stage in ("1", "2a")}


def audit(*stages: tuple[str, Path]) -> subprocess.CompletedProcess[str]:
    args = [f"{stage}={xml}" for stage, xml in stages]
    return subprocess.run([sys.executable, str(REPO / ".ci" / "skips.py"), *args], capture_output=True, text=True)


def test_a_skip_covered_by_another_stage_passes_and_the_table_says_where_it_runs(stages: dict[str, Path]) -> None:
    out = audit(*stages.items())
    assert out.returncode == 0, out.stderr
    table = out.stdout
    assert "| tests.test_optional_backends::test_sam | 1: needs torchvision | 2a |" in table
    assert "| tests.test_contracts::test_plugin_keeps_its_role_contract[segmenter-sam] | 1: needs segmenter-sam | 2a |" in table
    assert "| tests.test_heavy | 1: needs the heavy stage | 2a |" in table  # a module skipped whole
    assert "| tests.test_optional_backends::test_vllm_engine_on_tiny_llava | 1: vllm needs a CUDA GPU; 2a: vllm needs a CUDA GPU | none (allowed: vllm's engine needs a CUDA GPU) |" in table


def test_a_test_skipped_in_every_stage_fails_ci(tmp_path: Path) -> None:
    never = {"test_never.py": "import pytest\ndef test_never():\n    pytest.skip('no weights here')\n"}
    out = audit(("1", stage_xml(tmp_path, "1", never)), ("2a", stage_xml(tmp_path, "2a", never)))
    assert out.returncode == 1
    assert "skips: tests.test_never::test_never is skipped in every stage that collected it (1: no weights here; 2a: no weights here)" in out.stderr
    assert out.stderr.count("\n") == 1


def test_stage_one_alone_fails_for_each_test_only_later_stages_run(stages: dict[str, Path]) -> None:
    out = audit(("1", stages["1"]))
    assert out.returncode == 1
    assert {line.split(" is skipped")[0] for line in out.stderr.splitlines()} == {
        "skips: tests.test_optional_backends::test_sam",
        "skips: tests.test_contracts::test_plugin_keeps_its_role_contract[segmenter-sam]",
        "skips: tests.test_heavy",
    }


def test_a_stale_allowlist_entry_and_a_missing_file_are_errors(tmp_path: Path) -> None:
    xml = stage_xml(tmp_path, "2a", {"test_optional_backends.py": "def test_sam():\n    pass\n"})
    out = audit(("2a", xml))
    assert out.returncode == 1
    assert "skips: allowed skip tests.test_optional_backends::test_vllm_engine_on_tiny_llava was not collected in any stage" in out.stderr
    missing = audit(("1", tmp_path / "nope.xml"))
    assert missing.returncode == 1 and missing.stderr.startswith("skips: stage 1: cannot read") and missing.stderr.count("\n") == 1


def test_ci_runs_the_readmes_test_command_and_audits_every_stage() -> None:
    """Stage 1 is the README's command as printed; each stage's JUnit XML is one the audit reads."""
    readme = (REPO / "README.md").read_text()
    command = re.search(r"Set up and run the tests:\n\n```bash\n(.+)\n```", readme)
    assert command is not None
    run = (REPO / ".ci" / "run").read_text()
    assert command.group(1) in run.splitlines()
    written = re.findall(r"--junitxml=(\S+)", run)
    audited = re.search(r"^python3 \.ci/skips\.py (.+)$", run, re.M)
    assert audited is not None and len(written) == 3
    assert sorted(arg.split("=", 1)[1] for arg in audited.group(1).split()) == sorted(written)
