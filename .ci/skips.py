"""CI's skip audit: no test may be skipped in every stage that collected it, except ALLOWED.

Usage: python3 .ci/skips.py STAGE=JUNIT.xml ...  (one JUnit XML per CI stage, pytest --junitxml).
Prints each test skipped somewhere, with its reason per stage and the stages that run it; exits 1
when a test (not in ALLOWED) runs in no stage, or when an ALLOWED test was collected nowhere.
A module skipped whole at collection (``pytest.importorskip`` at module level) counts as run where
any test of that module ran.
"""

from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ALLOWED = {  # test id -> why no CPU stage can run it
    "tests.test_optional_backends::test_vllm_engine_on_tiny_llava": "vllm's engine needs a CUDA GPU",
    "tests.test_contracts::test_plugin_keeps_its_role_contract[describer-vllm]": "vllm's engine needs a CUDA GPU",
}


@dataclass
class Outcome:
    """Where one test was collected: the stages that ran it and, per stage, why it was skipped."""

    ran: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def reason(skip: ET.Element) -> str:
    """A skip's reason on one line (pytest writes a module skipped at collection as a location tuple)."""
    text = skip.get("message") or ""
    if text == "collection skipped":
        try:
            text = str(ast.literal_eval(skip.text or "")[2]).removeprefix("Skipped: ")
        except (ValueError, SyntaxError, IndexError, TypeError):
            text = skip.text or text
    return " ".join(text.split())


def read_stage(stage: str, path: Path, outcomes: dict[str, Outcome], modules_run: dict[str, set[str]]) -> None:
    """Add one stage's JUnit results to ``outcomes``; note the modules where a test ran."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        sys.exit(f"skips: stage {stage}: cannot read {path} ({exc})")
    for case in root.iter("testcase"):
        module, name = case.get("classname", ""), case.get("name", "")
        test = f"{module}::{name}" if module else name  # "" classname: a module skipped at collection
        outcome = outcomes.setdefault(test, Outcome())
        skip = case.find("skipped")
        if skip is None:
            outcome.ran.append(stage)
            modules_run.setdefault(stage, set()).add(module)
        else:
            outcome.skipped[stage] = reason(skip)


def runs_in(test: str, outcome: Outcome, modules_run: dict[str, set[str]]) -> list[str]:
    """The stages that ran ``test`` (for a module skipped whole, those that ran any of its tests)."""
    if "::" in test:
        return outcome.ran
    return [stage for stage, modules in modules_run.items() if any(m == test or m.startswith(test + ".") for m in modules)]


def audit(stages: dict[str, Path]) -> int:
    outcomes: dict[str, Outcome] = {}
    modules_run: dict[str, set[str]] = {}
    for stage, path in stages.items():
        read_stage(stage, path, outcomes, modules_run)
    problems = [f"allowed skip {test} was not collected in any stage (stale ALLOWED entry)" for test in ALLOWED if test not in outcomes]
    print("| test | skipped in (reason) | runs in |\n| --- | --- | --- |")
    for test, outcome in sorted(outcomes.items()):
        if not outcome.skipped:
            continue
        stages_run = runs_in(test, outcome, modules_run)
        reasons = "; ".join(f"{stage}: {reason}" for stage, reason in outcome.skipped.items())
        where = ", ".join(stages_run) or (f"none (allowed: {ALLOWED[test]})" if test in ALLOWED else "NONE")
        print(f"| {test} | {reasons} | {where} |")
        if not stages_run and test not in ALLOWED:
            problems.append(f"{test} is skipped in every stage that collected it ({reasons})")
    for problem in problems:
        print(f"skips: {problem}", file=sys.stderr)
    ran = sum(1 for o in outcomes.values() if o.ran)
    print(f"skips: {len(outcomes)} tests over stages {', '.join(stages)}; {ran} ran somewhere; {len(problems)} problem(s)")
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    stages = dict(arg.split("=", 1) for arg in argv if "=" in arg)
    if not stages or len(stages) != len(argv):
        sys.exit("usage: python3 .ci/skips.py STAGE=JUNIT.xml ...")
    return audit({stage: Path(path) for stage, path in stages.items()})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
