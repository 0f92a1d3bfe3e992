"""ffexp._compat.hydra_compose: a sweep's loader gives every job the config Hydra's own loader composes, when
it remembers (same group choices, another seed), after a job changed its config, and in a
worker that read the launching process's file; and a job of a sweep run through the command
gets the same config with ffexp's sweeper as with Hydra's own."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

import ffexp._compat.hydra_compose as fc
from ffexp.launch.config import register_schemas

JOBS = [["activation=tanh", "init=he", "seed=1"],
        ["activation=tanh", "init=he", "seed=2", "optimizer.lr=0.5"],
        ["activation=relu", "init=he", "seed=1", "+dataset.params.random_state=3"],
        ["activation=tanh", "init=xavier", "seed=3", "optimizer=sgd"],
        ["activation=tanh", "init=he", "seed=4", "hydra.job.name=other"]]


@pytest.fixture
def hydra():
    """(master config of a sweep, Hydra's own loader)."""
    register_schemas()
    before = GlobalHydra.instance().hydra   # what a test before left, given back after
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("ffexp.conf", version_base=None):
            master = compose("config", overrides=["hydra/launcher=basic"],
                             return_hydra_config=True)
            yield master, GlobalHydra.instance().config_loader()
    finally:
        GlobalHydra.instance().clear()
        if before is not None:
            GlobalHydra.instance().initialize(before)


def _plain(config) -> dict:
    return OmegaConf.to_container(config, resolve=False)


def test_every_job_gets_the_config_hydra_composes(hydra):
    master, plain = hydra
    sweep = fc.SweepLoader.of(plain, master)
    try:
        for job in JOBS * 2:
            got = sweep.load_sweep_config(master, job)
            assert _plain(got) == _plain(plain.load_sweep_config(master, job)), job
            assert got.seed == int(job[2].split("=")[1])
            # what a job does to its config does not reach the next job's
            got.seed = 999
            got.model.hidden_sizes.append(7)
            got.hydra.job.num = 5
        # remembered: one defaults list and one config per combination of group choices
        # (tanh he; relu he; tanh xavier sgd: the rest are values)
        assert len(fc._MEMO["configs"]) == 3
        assert sum(1 for k in fc._MEMO["defaults"] if k[1] == "config") == 3
    finally:
        sweep.close()


def test_a_new_combination_reads_no_file_another_one_read(hydra, monkeypatch):
    """The sweeper's check composes every combination of group choices: past the first, the
    files are copies of those read before (each read once), and the configs are Hydra's."""
    master, plain = hydra
    read = []
    real = plain.repository.load_config
    monkeypatch.setattr(plain.repository, "load_config",
                        lambda config_path: read.append(config_path) or real(config_path))
    sweep = fc.SweepLoader.of(plain, master)
    try:
        sweep.load_sweep_config(master, JOBS[0])        # the first: Hydra's own repository
        read.clear()
        for job in (JOBS[2], JOBS[3], ["activation=sigmoid", "init=zeros"]):
            got = _plain(sweep.load_sweep_config(master, job))
            monkeypatch.setattr(plain.repository, "load_config", real)
            assert got == _plain(plain.load_sweep_config(master, job)), job
            monkeypatch.setattr(plain.repository, "load_config",
                                lambda config_path: read.append(config_path) or real(config_path))
        assert read and len(read) == len(set(read)), read
        assert "dataset/moons" in read and "activation/sigmoid" in read
    finally:
        sweep.close()


def test_a_worker_reads_what_the_launching_process_composed(hydra, monkeypatch):
    master, plain = hydra
    sweep = fc.SweepLoader.of(plain, master)
    try:
        for job in JOBS:
            sweep.load_sweep_config(master, job)
        sweep.share()
        shared = Path(sweep.shared)
        assert shared.is_file()
        worker = pickle.loads(pickle.dumps(sweep))      # what a launcher sends with a job
        monkeypatch.setattr(fc, "_MEMO", {"token": None})   # a new process
        real = fc.ConfigLoaderImpl._compose_config_from_defaults_list
        composed = []
        monkeypatch.setattr(fc.ConfigLoaderImpl, "_compose_config_from_defaults_list",
                            lambda self, *a, **k: composed.append(1) or real(self, *a, **k))
        for job in JOBS:
            assert _plain(worker.load_sweep_config(master, job)) == \
                _plain(plain.load_sweep_config(master, job))
        assert composed == [1] * len(JOBS)              # Hydra's loader only, not the worker
        # a file that cannot be read is composed around
        monkeypatch.setattr(fc, "_MEMO", {"token": None})
        shared.write_bytes(b"not a pickle")
        assert _plain(worker.load_sweep_config(master, JOBS[0])) == \
            _plain(plain.load_sweep_config(master, JOBS[0]))
    finally:
        sweep.close()
    assert not shared.exists() and fc.for_sweep(master) is None


def test_another_sweep_in_the_process_starts_afresh(hydra):
    master, plain = hydra
    first = fc.SweepLoader.of(plain, master)
    first.load_sweep_config(master, JOBS[0])
    assert fc.for_sweep(master) is first
    first.close()
    second = fc.SweepLoader.of(plain, master)
    second.load_sweep_config(master, JOBS[3])
    assert len(fc._MEMO["configs"]) == 1 and fc._MEMO["token"] == second.token
    second.close()


FFEXP = str(Path(sys.executable).with_name("ffexp"))
HYDRAS_OWN = "hydra.sweeper._target_=hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


@pytest.mark.parametrize("launcher", ["basic", pytest.param("joblib", marks=pytest.mark.slow)])
def test_the_command_writes_the_configs_hydras_sweeper_writes(tmp_path, launcher):
    sweep = ["-m", "activation=tanh,relu", "init=he,xavier", "seed=0,1", "train.epochs=1",
             "tracking.enabled=false", f"hydra/launcher={launcher}"]
    written = {}
    for name, extra in (("ffexp", []), ("hydra", [HYDRAS_OWN])):
        out = tmp_path / name
        subprocess.run([FFEXP, *sweep, *extra, f"hydra.sweep.dir={out}"], cwd=tmp_path,
                       check=True, capture_output=True, timeout=300)
        written[name] = {p.relative_to(out).as_posix(): p.read_text()
                         for p in sorted(out.glob("*/.hydra/*.yaml"))}
    assert len(written["ffexp"]) == 8 * 3
    for path, text in written["ffexp"].items():
        other = written["hydra"][path]
        if path.endswith("hydra.yaml"):
            text, other = (_hydra_yaml(t) for t in (text, other))
        assert text == other, path


def _hydra_yaml(text: str) -> dict:
    """hydra.yaml but what differs between two sweeps: their folder, sweeper, uid."""
    hydra = OmegaConf.to_container(OmegaConf.create(text))["hydra"]
    hydra["job"]["env_set"].pop("FFEXP_SWEEP_UID")
    for key in ("sweep", "sweeper"):
        hydra.pop(key)
    hydra["runtime"].pop("output_dir")
    mine = ("hydra.sweep.dir", "hydra.sweeper", "++hydra.job.env_set")
    hydra["overrides"]["hydra"] = [o for o in hydra["overrides"]["hydra"]
                                   if not o.startswith(mine)]
    return hydra


def test_the_tracking_callbacks_check_composes_for_the_sweeper(hydra):
    """The callback checks before Hydra sets up the sweeper; what it composed is the sweep's."""
    from ffexp.launch.sweeper import _CHECKED, check
    master, plain = hydra
    _CHECKED.clear()
    assert check(master, JOBS) == 4     # plan counts hydra.job.name=other as a choice
    loader = fc.for_sweep(master)
    try:
        assert isinstance(loader, fc.SweepLoader) and len(fc._MEMO["configs"]) == 3
        assert fc._MEMO["token"] == loader.token
    finally:
        loader.close()
        _CHECKED.clear()


def test_threads_compose_alike_and_hydras_loader_remembers_nothing(hydra):
    """A joblib threading backend composes in two threads of one process; Hydra's own loader
    in the same process, after, composes afresh (the memo is a SweepLoader's only)."""
    from concurrent.futures import ThreadPoolExecutor
    master, plain = hydra
    sweep = fc.SweepLoader.of(plain, master)
    try:
        with ThreadPoolExecutor(2) as pool:
            got = list(pool.map(lambda job: _plain(sweep.load_sweep_config(master, job)),
                                JOBS * 3))
        assert got == [_plain(plain.load_sweep_config(master, job)) for job in JOBS * 3]
        sweep.load_sweep_config(master, JOBS[0])    # and in this thread, which it leaves
        remembered = len(fc._MEMO["defaults"])
        plain.load_sweep_config(master, ["activation=sigmoid", "init=zeros"])
        assert len(fc._MEMO["defaults"]) == remembered and fc._ACTIVE.get() is None
    finally:
        sweep.close()
