"""The committed studies are reproducible by construction.

- (default) every committed report was generated from a clean tree: its provenance.md says
  ``git_dirty`` is ``false`` for every run, and names a commit;
- (default) every committed report names the BLAS kernel its runs used (provenance.md), and it
  is studyrun's pinned kernel; studyrun's environment really gives that kernel (threadpoolctl);
- (default) the experiments index lists every study folder, with a verdict and a run time;
- (slow) every study rerun at the current commit, with the command of its README, in a scratch
  directory, regenerates the committed ``report.md``, tables (``*.csv``) and ``analysis.md`` byte
  for byte (signal_propagation also its ``measure.md``), under studyrun's pinned OpenBLAS kernel
  (``OPENBLAS_CORETYPE=Haswell``). What legitimately changes from one sweep
  to the next lives in ``provenance.md``, which is not compared. Study 4 (gradient_descent)
  measures seconds: its wall-clock numbers are written to ``report/timing.md``, which is not
  compared (nor are figures: PNGs are not compared at all); everything else of it is.

Run the slow part before closing any issue that changes numbers, and regenerate what it flags
(``python experiments/studyrun.py <study>`` from a clean commit).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))

import studyrun  # noqa: E402

#: files of a study's report/ whose content depends on measured seconds (not compared)
TIME_BASED = {"gradient_descent": {"timing.md"}}


def compared(name: str, folder: Path) -> list[Path]:
    """The files of a study that a rerun must regenerate byte for byte, relative to ``folder``."""
    report = folder / name / "report"
    files = [report / "report.md", report / "analysis.md", *sorted(report.glob("*.csv"))]
    files += sorted((folder / name).glob("measure.md"))
    return [f.relative_to(folder) for f in files if f.name not in TIME_BASED.get(name, ())]


def test_there_are_studies():
    assert len(studyrun.STUDIES) >= 11, studyrun.STUDIES


@pytest.mark.parametrize("name", studyrun.STUDIES)
def test_committed_report_comes_from_a_clean_commit(name):
    path = ROOT / "experiments" / name / "report" / "provenance.md"
    assert path.is_file(), f"experiments/{name} has no committed report"
    prov = path.read_text()
    dirty = re.search(r"Uncommitted changes \(git_dirty\): (.*)", prov)
    commit = re.search(r"Git commit\(s\): `([0-9a-f]{40})`", prov)
    assert dirty and commit, f"{name}: provenance.md names no commit or dirty flag"
    assert dirty.group(1).startswith("`false`") and "`true`" not in dirty.group(1), (
        f"experiments/{name}: the committed report comes from a dirty tree ({dirty.group(1)}); "
        f"commit, then rerun: python experiments/studyrun.py {name}")


def test_studyrun_pins_the_kernel_it_names():
    """The environment studyrun gives its steps makes numpy's OpenBLAS run KERNEL, whatever
    this process runs; the README names it."""
    env = studyrun.pinned({k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"})
    assert env["OPENBLAS_CORETYPE"] == studyrun.KERNEL == "Haswell"
    assert studyrun.kernel(env) == studyrun.KERNEL
    assert f"OPENBLAS_CORETYPE={studyrun.KERNEL}" in (ROOT / "experiments" / "README.md").read_text()


@pytest.mark.parametrize("name", studyrun.STUDIES)
def test_committed_report_names_its_kernel(name):
    prov = (ROOT / "experiments" / name / "report" / "provenance.md").read_text()
    kernel = re.search(r"^- BLAS kernel \(threadpoolctl architecture\): (.*)$", prov, re.M)
    assert kernel, f"experiments/{name}/report/provenance.md names no BLAS kernel"
    assert kernel.group(1).startswith(f"`{studyrun.KERNEL}` (") and "), `" not in kernel.group(1), (
        f"experiments/{name}: runs under {kernel.group(1)}, not only {studyrun.KERNEL}")


def test_index_lists_every_study_with_a_verdict_and_a_time():
    assert len(studyrun.STUDIES) >= 15
    index = (ROOT / "experiments" / "README.md").read_text()
    for name in studyrun.STUDIES:
        row = re.search(rf"^\| \[{name}\]\({name}/README.md\) \|(.*)$", index, re.M)
        assert row, f"experiments/README.md does not list {name}"
        cells = [c.strip() for c in row.group(1).split("|")]
        assert "**" in row.group(1) and re.search(r"\d+ (min|s)\b", row.group(1)), (name, cells)


def test_every_readme_command_is_runnable_as_steps():
    for name in studyrun.STUDIES:
        steps = studyrun.steps(name)
        assert steps[0][1:3] == ["-m", f"+experiment={name}"]
        assert any(s[0].endswith("ffexp-report") for s in steps)
        assert steps[-1][0] == sys.executable and f"experiments/{name}/" in steps[-1][1]


@pytest.mark.slow
@pytest.mark.parametrize("name", studyrun.STUDIES)
def test_rerun_regenerates_the_committed_report(tmp_path, name):
    """The README's command, run in a scratch directory that holds a copy of the study's scripts
    (so its relative store and report paths land there), gives the committed bytes."""
    (tmp_path / "experiments").mkdir()
    shutil.copy(ROOT / "experiments" / "studylib.py", tmp_path / "experiments")
    shutil.copytree(ROOT / "experiments" / name, tmp_path / "experiments" / name,
                    ignore=shutil.ignore_patterns("report", "mlflow.db", "measure.md", "measure.png"))
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI",
                                                            "FFEXP_COMMAND_LINE")}
    env["MPLBACKEND"] = "Agg"
    studyrun.run(name, tmp_path, env)  # under studyrun.KERNEL, as the committed reports
    differ = [str(f) for f in compared(name, ROOT / "experiments")
              if not (tmp_path / "experiments" / f).is_file()
              or (tmp_path / "experiments" / f).read_bytes() != (ROOT / "experiments" / f).read_bytes()]
    assert not differ, (f"rerun of {name} at this commit differs from the committed {differ}; "
                        f"regenerate from a clean commit: python experiments/studyrun.py {name}")
