"""A stack's members' configs (ffexp.launch.stacked._compose): the first member of each
combination of group choices composed by Hydra, the next ones derived from it by value
(ffexp._compat.hydra_compose.derive): every member's config, hydra node and ``.hydra`` record
equal what Hydra composes and writes for that job (``load_sweep_config`` and ``run_job``'s
steps), interpolations included; and libyaml's text equals OmegaConf's."""

from __future__ import annotations

import os

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict, read_write

import ffexp._compat.hydra_compose as fc
from ffexp._compat.omegaconf_yaml import to_yaml
from ffexp.launch import stacked
from ffexp.launch.main import register

#: group choices, values, a forced key, interpolations by value (into the task's config and
#: from a hydra field into it), a value key only some jobs set, a ``+`` append and a hydra
#: override (both composed by Hydra, never derived)
JOBS = [["activation=tanh", "init=he", "seed=0", "optimizer.lr=0.1", "++dataset.params.noise=0.1"],
        ["activation=tanh", "init=he", "seed=1", "optimizer.lr=0.5", "++dataset.params.noise=0.3"],
        ["activation=relu", "init=he", "seed=0", "optimizer.lr=0.1", "++dataset.params.noise=0.1"],
        ["activation=tanh", "init=he", "seed=2", "optimizer.lr=${dataset.params.noise}",
         "++dataset.params.noise=0.2"],
        ["activation=relu", "init=he", "seed=7", "optimizer.lr=0.3", "++dataset.params.noise=0.1"],
        ["activation=tanh", "init=he", "seed=3", "optimizer.lr=0.1", "++dataset.params.noise=0.1",
         "train.epochs=3"],
        ["activation=tanh", "init=he", "seed=4", "+dataset.params.random_state=3"],
        ["activation=tanh", "init=he", "seed=5", "+dataset.params.random_state=4"],
        ["activation=tanh", "init=he", "seed=6", "optimizer.lr=0.2", "++dataset.params.noise=0.1",
         "hydra.job.name=other"],
        ["activation=tanh", "init=he", "seed=8", "optimizer.lr=0.1",
         "++dataset.params.noise=0.1", "hydra.job.name=other"]]


@pytest.fixture
def sweep(tmp_path):
    """(master config of a sweep whose subdir interpolates a task value, Hydra's loader)."""
    register()
    before = GlobalHydra.instance().hydra
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("ffexp.conf", version_base=None):
            master = compose("config", overrides=[
                "hydra/launcher=basic", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                "hydra.sweep.subdir=${hydra.job.num}-s${seed}", "tracking.enabled=false"],
                return_hydra_config=True)
            yield master, GlobalHydra.instance().config_loader()
    finally:
        HydraConfig.instance().cfg = None
        GlobalHydra.instance().clear()
        if before is not None:
            GlobalHydra.instance().initialize(before)


def _hydras(loader, master, job, num):
    """(task config, hydra node copy, whole config) as Hydra's launcher and run_job make them."""
    cfg = loader.load_sweep_config(master, job)
    with open_dict(cfg):
        cfg.hydra.job.id, cfg.hydra.job.num = f"stack_{num}", num
    HydraConfig.instance().set_config(cfg)
    out = os.path.join(str(cfg.hydra.sweep.dir), str(OmegaConf.select(cfg, "hydra.sweep.subdir")))
    with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
        cfg.hydra.runtime.output_dir = os.path.abspath(out)
    HydraConfig.instance().set_config(cfg)
    task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    return task, HydraConfig.instance().cfg, cfg


@pytest.mark.parametrize("derived", [True, False], ids=["derived", "public-only"])
def test_every_member_gets_the_config_hydra_composes(sweep, monkeypatch, derived):
    """``derived=False``: an untested Hydra (``derivable`` false): Hydra composes them all."""
    master, plain = sweep
    if not derived:
        monkeypatch.setattr(fc, "derivable", lambda: False)
    loader = fc.SweepLoader.of(plain, master)
    composed = []
    real = loader.load_sweep_config
    monkeypatch.setattr(loader, "load_sweep_config",
                        lambda m, job: composed.append(list(job)) or real(m, job))
    monkeypatch.setattr(GlobalHydra.instance(), "config_loader", lambda: loader)
    plan = {"config_name": "config", "hydra_overrides": OmegaConf.to_container(master.hydra.overrides.hydra),
            "compose": None, "members": [[10 + i, job] for i, job in enumerate(JOBS)]}
    task_hc = OmegaConf.create({"sweep": {"dir": master.hydra.sweep.dir},
                                "job": {"id": "stack_10", "num": 10}})
    got, before = [], HydraConfig.instance().cfg
    for num, task, _ in stacked._compose(plan, task_hc):
        record = {name: (HydraConfig.instance().cfg.hydra.runtime.output_dir + "/.hydra/" + name)
                  for name in ("config.yaml", "hydra.yaml", "overrides.yaml")}
        got.append((num, OmegaConf.to_container(task), OmegaConf.to_container(task, resolve=True),
                    OmegaConf.to_container(HydraConfig.instance().cfg),
                    {k: open(v, encoding="utf-8").read() for k, v in record.items()}))
    assert HydraConfig.instance().cfg is before   # given back
    # derived: the tanh/he members by value after job 0, the relu one after job 2; composed:
    # the first of each combination, a changed key set (train.epochs), ``+`` appends, and
    # the hydra override's first job
    assert composed == ([JOBS[i] for i in (0, 2, 5, 6, 7, 8)] if derived else JOBS)
    for num, task, resolved, hydra_node, files in got:
        job = JOBS[num - 10]
        want_task, want_hydra, want_cfg = _hydras(plain, master, job, num)
        assert task == OmegaConf.to_container(want_task), job
        assert resolved == OmegaConf.to_container(want_task, resolve=True), job
        assert hydra_node == OmegaConf.to_container(want_hydra), job
        assert hydra_node["hydra"]["runtime"]["output_dir"].endswith(f"/{num}-s{resolved['seed']}")
        assert files == {"config.yaml": OmegaConf.to_yaml(want_task),
                         "hydra.yaml": OmegaConf.to_yaml(want_hydra),
                         "overrides.yaml": OmegaConf.to_yaml(want_cfg.hydra.overrides.task)}
    assert got[3][2]["optimizer"]["lr"] == got[3][2]["dataset"]["params"]["noise"] == 0.2


def test_libyaml_writes_the_text_omegaconf_writes():
    node = OmegaConf.create({"a": "10", "b": "true", "c": "${x}", "d": [1, "2", None, 1.5e-9],
                             "e": {"f": "multi\nline", "g": "ü ✓", "h": "", "i": "null"},
                             "x": 3, "y": "- a", "z": "'q'", "w": 'say "hi"', "v": 1e300})
    assert to_yaml(node) == OmegaConf.to_yaml(node)
    assert to_yaml(node.d) == OmegaConf.to_yaml(node.d)
