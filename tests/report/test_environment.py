"""The numeric environment: which BLAS is numpy's, the CPU model, and the one line ffexp-report
says when the provenance.md it replaces names another BLAS kernel or version."""

from __future__ import annotations

from pathlib import Path

from ffexp.report.cli import main
from ffexp.tracking.numeric_env import cpu_model, environment, numpy_blas


def test_numpy_blas_is_the_one_in_numpys_folders(tmp_path):
    numpy_dir = tmp_path / "site" / "numpy"
    scipy = {"user_api": "blas", "internal_api": "openblas", "architecture": "Zen",
             "filepath": str(tmp_path / "site" / "scipy.libs" / "libscipy_openblas.so")}
    ours = {"user_api": "blas", "internal_api": "openblas", "architecture": "Haswell",
            "filepath": str(tmp_path / "site" / "numpy.libs" / "libscipy_openblas64_.so")}
    omp = {"user_api": "openmp", "internal_api": "openmp", "filepath": "/usr/lib/libgomp.so"}
    assert numpy_blas([omp, scipy, ours], numpy_dir) is ours
    assert numpy_blas([omp, scipy], numpy_dir) is scipy   # a system BLAS: the first loaded
    assert numpy_blas([omp], numpy_dir) == {}


def test_cpu_model_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD  EPYC 7B13\n\nprocessor\t: 1\n"
                    "model name\t: AMD EPYC 7B13\n")
    assert cpu_model(info) == "AMD EPYC 7B13"
    assert cpu_model(tmp_path / "none")  # elsewhere: platform's answer, never empty


def test_this_process():
    import numpy
    import threadpoolctl

    env = environment("float32")
    assert env["numpy"] == numpy.__version__ and env["dtype"] == "float32"
    libs = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert (env["blas"], env["blas_version"], env["blas_kernel"]) in {
        (i["internal_api"], i["version"], i.get("architecture") or "unknown") for i in libs}


def test_a_note_when_the_previous_provenance_names_another_kernel(real_sweep, tmp_path, capsys):
    out = tmp_path / "r"
    argv = ["--tracking-uri", real_sweep["uri"], "--output", str(out), "--no-log-artifact"]
    assert main(argv) == 0
    assert "note:" not in capsys.readouterr().err  # no previous report
    assert main(argv) == 0
    assert "note:" not in capsys.readouterr().err  # the same environment
    prov = out / "provenance.md"
    text = prov.read_text()
    kernel = environment()["blas_kernel"]
    other = "Sandybridge" if kernel != "Sandybridge" else "Haswell"
    prov.write_text(text.replace(f"architecture): `{kernel}`", f"architecture): `{other}`"))
    assert main(argv) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [f"ffexp-report: note: the previous provenance.md in this folder names another "
                   f"numeric environment (BLAS kernel (threadpoolctl architecture) {other} (8 "
                   f"runs) -> {kernel} (8 runs)): values that depend on the last bits may "
                   "differ"]
    # a report from before the environment was recorded names none
    prov.write_text("\n".join(line for line in text.splitlines() if "BLAS" not in line))
    assert main(argv) == 0
    assert "(not recorded) -> " in capsys.readouterr().err
    assert Path(out / "provenance.md").read_text() == text
