"""Hydra's side of the settings: the schemas in the ConfigStore, the composed DictConfig
converted once into ffexp.job.settings.Settings, and Hydra's errors as one line.

Frozen dataclasses make a read-only OmegaConf node, which the YAML files could not extend, so
the ConfigStore holds a non-frozen copy of each schema (``_thawed``), and ``to_settings``
freezes what OmegaConf builds from it.
"""

from __future__ import annotations

import copy
from dataclasses import MISSING as MISSING_FIELD
from dataclasses import field, fields, is_dataclass, make_dataclass, replace
from functools import cache
from typing import Any, get_type_hints

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from ffexp.job.settings import (ActivationSettings, DatasetSettings, InitSettings, LossSettings,
                                OptimizerSettings, Settings, TrackingSettings)

#: ConfigStore name in group ``schema`` -> schema. A group's YAML file extends its schema with
#: ``defaults: [/schema/<group>@_here_, _self_]``; a separate group keeps the schemas out of the
#: options Hydra lists for ``activation=<typo>``.
SCHEMAS: dict[str, type] = {
    "config": Settings,
    "dataset": DatasetSettings,
    "activation": ActivationSettings,
    "init": InitSettings,
    "loss": LossSettings,
    "optimizer": OptimizerSettings,
    "tracking": TrackingSettings,
}


@cache
def _thawed(schema: type) -> type:
    """``schema`` as a dataclass that is not frozen, nested schemas likewise: OmegaConf makes a
    frozen dataclass a read-only node, which the YAML files could not extend."""
    hints = get_type_hints(schema)
    specs = []
    for f in fields(schema):
        typ = hints[f.name]
        if is_dataclass(typ):
            typ = _thawed(typ)
            spec = field(default_factory=typ) if f.default_factory is not MISSING_FIELD \
                else field(default=f.default)
        elif f.default_factory is not MISSING_FIELD:
            spec = field(default_factory=f.default_factory)
        else:
            spec = field(default=f.default)
        specs.append((f.name, typ, spec))
    name = f"{schema.__name__}Schema"  # importable by that name (pickled with a config)
    thawed = make_dataclass(schema.__name__, specs, namespace={"__module__": __name__,
                                                                "__qualname__": name})
    globals()[name] = thawed
    return thawed


def _frozen(value: Any, schema: type) -> Any:
    """A ``_thawed(schema)`` instance as the frozen ``schema``."""
    hints = get_type_hints(schema)
    return schema(**{f.name: _frozen(getattr(value, f.name), hints[f.name])
                     if is_dataclass(hints[f.name]) else getattr(value, f.name)
                     for f in fields(schema)})


# made at import: a pickled config (a job sent to a joblib worker or a SLURM task) names them
for _schema in SCHEMAS.values():
    _thawed(_schema)


def _writable(schema: type) -> DictConfig:
    """The structured config of a schema, writable (``_thawed``)."""
    return OmegaConf.structured(_thawed(schema))


def register_schemas() -> None:
    """Store the schemas in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        cs.store(group="schema", name=name, node=_writable(schema))


def _refuse_unknown_keys(cfg: DictConfig, schema: type, prefix: str = "") -> None:
    """ValueError for keys the schema does not know (Hydra lets ``+key=value`` add them)."""
    types = get_type_hints(schema)
    for key in cfg:
        if key not in types:
            raise ValueError(f"{prefix}{key}: unknown config key; accepted keys"
                             f"{' of ' + prefix[:-1] if prefix else ''}: {sorted(types)}")
        sub = types[key]
        node = None if OmegaConf.is_missing(cfg, key) else cfg[key]
        if isinstance(node, DictConfig) and is_dataclass(sub):
            _refuse_unknown_keys(node, sub, f"{prefix}{key}.")


def _show(sizes) -> str:
    return "[" + ",".join(str(n) for n in sizes) + "]"


def equal_layers(model, overrides=()):
    """``model`` with hidden_sizes = [width] * depth when model.depth or model.width is set
    (the other taken from hidden_sizes), depth and width then stating the result; ValueError
    naming the keys when ``overrides`` (the command line's) also set model.hidden_sizes, when
    depth is not an integer >= 0 or width not one >= 1, or when hidden_sizes has unequal
    widths and only depth is given."""
    depth, width, sizes = model.depth, model.width, tuple(model.hidden_sizes)
    if depth is None and width is None:
        return replace(model, hidden_sizes=sizes)
    given = " ".join(f"model.{k}={v}" for k, v in (("depth", depth), ("width", width))
                     if v is not None)
    if any(str(o).lstrip("+~").startswith("model.hidden_sizes=") for o in overrides):
        raise ValueError(f"{given}: cannot be combined with model.hidden_sizes="
                         f"{_show(sizes)}; give either model.depth and model.width (equal "
                         f"hidden layers) or model.hidden_sizes (each layer's size)")
    if depth is not None and (isinstance(depth, bool) or depth < 0):
        raise ValueError(f"model.depth={depth}: must be an integer >= 0 (hidden layers)")
    if width is not None and (isinstance(width, bool) or width < 1):
        raise ValueError(f"model.width={width}: must be an integer >= 1 (units per hidden "
                         f"layer)")
    if width is None:
        if len(set(sizes)) > 1:
            raise ValueError(f"model.depth={depth}: model.hidden_sizes={_show(sizes)} has "
                             f"unequal widths; give model.width too")
        width = sizes[0] if sizes else 16
    depth = len(sizes) if depth is None else depth
    return replace(model, hidden_sizes=(width,) * depth, depth=depth, width=width)


def to_settings(cfg: DictConfig, overrides=()) -> Settings:
    """The composed config (with or without its ``hydra`` node) as typed, frozen Settings;
    ``overrides``: the command line's, which ``equal_layers`` checks."""
    if "hydra" in cfg:
        cfg = copy.deepcopy(cfg)  # keeps the schema's type, which masked_copy would drop
        with read_write(cfg), open_dict(cfg):
            del cfg["hydra"]
    _refuse_unknown_keys(cfg, Settings)
    settings = OmegaConf.to_object(cfg)
    if not isinstance(settings, _thawed(Settings)):
        raise TypeError(f"the config's schema is {type(settings).__name__}, not Settings; "
                        f"does conf/config.yaml list /schema/config@_here_ in its defaults?")
    settings = _frozen(settings, Settings)
    acts = settings.model.activations
    model = replace(equal_layers(settings.model, overrides),
                    activations=None if acts is None else tuple(acts))
    dataset = replace(settings.dataset, params=dict(settings.dataset.params))
    return replace(settings, model=model, dataset=dataset)


def hydra_error_line(err: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line message (a wrong type, an unknown option) as one line:
    the override, the reason, the key and the accepted options; no search path, no types, and
    not the traceback that joblib chains to an error it re-raises from a worker."""
    text = str(err)
    cause = str(err.__cause__) if err.__cause__ is not None else ""
    if cause not in text and "Traceback (most recent call last)" not in cause:
        text += "\n" + cause
    parts: list[str] = []
    for line in text.splitlines():
        if line.startswith("Config search path"):
            break
        item = line.strip()
        if not item or item.startswith(("reference_type=", "object_type=", "Set the env")):
            continue
        if line[:1] in ("\t", " ") and parts and not item.startswith("full_key"):
            parts[-1] += (" " if parts[-1].endswith(":") else ", ") + item
        else:
            parts.append(item)
    return "; ".join(parts)




def add_resolver(name: str, function) -> None:
    """Register an OmegaConf resolver once (idempotent), through the API the installed
    OmegaConf recommends: ``register_new_resolver`` up to 2.3, ``register_resolver`` from 2.4
    (where the former is deprecated; in 2.3 the latter is the deprecated legacy one)."""
    from importlib import metadata

    from packaging.version import Version
    if OmegaConf.has_resolver(name):
        return
    if Version(metadata.version("omegaconf")).release[:2] >= (2, 4):
        OmegaConf.register_resolver(name, function)
    else:
        OmegaConf.register_new_resolver(name, function)


def hydra_main_kwargs() -> dict:
    """``hydra.main``'s arguments besides the config's place: ``version_base=None`` (Hydra's
    current defaults) for hydra-core 1.3; Hydra 1.4 deprecates the parameter (its defaults
    are the current ones)."""
    from importlib import metadata

    from packaging.version import Version
    return {} if Version(metadata.version("hydra-core")).release[:2] >= (1, 4) \
        else {"version_base": None}
