"""Every command, every input: a damaged store, an unusable tracking URI, an output folder that
cannot be made, a refused value end in one ``<command>: error:`` line, a non-zero exit and no
traceback; a refused command leaves no folder behind; a failed job's status names its run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from faults_helpers import FAST, env, ffexp, jobs, runs

STALE = str(Path(sys.executable).with_name("ffexp-stale"))
REPORT = str(Path(sys.executable).with_name("ffexp-report"))


def _tool(cmd: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([cmd, *args], cwd=cwd, env=env(), capture_output=True, text=True,
                          timeout=300)


def _one_line(proc: subprocess.CompletedProcess, prog: str, status: int = 2) -> str:
    assert proc.returncode == status, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), proc.stderr
    return lines[0]


@pytest.fixture
def damaged(tmp_path, template_db) -> dict[str, Path]:
    """A garbage file and a store truncated to half its size."""
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(64 * 1024))
    truncated = tmp_path / "truncated.db"
    data = Path(template_db).read_bytes()
    truncated.write_bytes(data[:len(data) // 2])
    return {"garbage": garbage, "truncated": truncated}


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
@pytest.mark.parametrize("multirun", [False, True], ids=["run", "sweep"])
def test_ffexp_on_a_damaged_store_says_so_in_one_line(tmp_path, damaged, kind, multirun):
    db = damaged[kind]
    proc = ffexp(tmp_path, *(["-m", "seed=0,1"] if multirun else []), *FAST, "train.epochs=2",
                 f"tracking.uri=sqlite:///{db}")
    line = _one_line(proc, "ffexp")
    assert f"the store {db} is damaged" in line
    assert ("file is not a database" if kind == "garbage" else "malformed") in line
    # nothing left behind: no outputs/<date>/<time>/, no multirun/<date>/<time>/
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_ffexp_report_and_ffexp_stale_on_a_damaged_store(tmp_path, damaged, kind):
    uri = f"sqlite:///{damaged[kind]}"
    line = _one_line(_tool(REPORT, tmp_path, "--tracking-uri", uri), "ffexp-report")
    assert "damaged" in line and uri in line
    line = _one_line(_tool(STALE, tmp_path, "--tracking-uri", uri), "ffexp-stale")
    assert "damaged" in line and uri in line


@pytest.mark.parametrize("uri, needle", [("foo://bar", "the store cannot be used"),
                                         ("http://127.0.0.1:1", "no MLflow tracking server")])
def test_ffexp_stale_on_an_unusable_tracking_uri(tmp_path, uri, needle):
    line = _one_line(_tool(STALE, tmp_path, "--tracking-uri", uri), "ffexp-stale")
    assert line.startswith(f"ffexp-stale: error: --tracking-uri {uri}: {needle}")


@pytest.mark.parametrize("where", ["under_a_file", "read_only"])
def test_ffexp_report_when_the_output_folder_cannot_be_created(tmp_path, store, where):
    if where == "under_a_file":
        (tmp_path / "afile").write_text("")
        output = tmp_path / "afile" / "report"
    else:
        output = Path("/proc/self/report")  # a read-only place, even for root
    line = _one_line(_tool(REPORT, tmp_path, "--tracking-uri", store, "-o", str(output)),
                     "ffexp-report")
    assert f"--output {output}: cannot be created" in line


def test_a_failed_jobs_status_carries_its_run_and_a_report_of_only_failed_runs(tmp_path,
                                                                             store):
    proc = ffexp(tmp_path, "-m", *FAST, "train.epochs=3", "seed=0", uri=store,
                 FFEXP_TEST_RAISE="0:2")
    assert proc.returncode == 1, proc.stderr
    (run,) = jobs(store)
    assert run.info.status == "FAILED"
    (status_file,) = (tmp_path / "multirun").rglob("ffexp_status.json")
    status = json.loads(status_file.read_text())
    assert status["status"] == "failed" and status["run_id"] == run.info.run_id
    # the selection holds only that failed run: a report, or one line; never a traceback
    report = _tool(REPORT, tmp_path, "--tracking-uri", store, "-o", str(tmp_path / "r"),
                   "--no-log-artifact")
    assert "Traceback" not in report.stdout + report.stderr
    if report.returncode != 0:
        _one_line(report, "ffexp-report")


def test_step_output_is_refused_and_a_refused_run_leaves_no_folder(tmp_path, store):
    proc = ffexp(tmp_path, *FAST, "train.epochs=3", "model.output_activation=step", uri=store)
    line = _one_line(proc, "ffexp")
    assert line.startswith("ffexp: error: model.output_activation=step: ")
    assert "nothing can learn" in line and "accepted outputs: auto, linear, sigmoid" in line
    assert runs(store) == []
    assert not (tmp_path / "outputs").exists()
    shutil.rmtree(tmp_path / "mlartifacts", ignore_errors=True)
