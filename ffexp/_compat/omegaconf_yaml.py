"""``OmegaConf.to_yaml`` with libyaml's emitter: the same text, about three times faster.

OmegaConf writes YAML through PyYAML's pure-Python ``Dumper`` with its own string representer
(``omegaconf._utils.get_omega_conf_dumper``: strings that YAML would read as another type are
quoted). ``to_yaml`` emits the same container with PyYAML's ``CDumper`` (libyaml's emitter)
carrying OmegaConf's representers; a stacked sweep writes three ``.hydra`` files per job with
it (ffexp.launch.stacked). tests/app/test_derive.py checks the text equals ``OmegaConf.to_yaml``.

Private part: ``get_omega_conf_dumper`` and the container options ``to_yaml`` uses; gated on
the tested omegaconf series and on PyYAML built with libyaml, ``OmegaConf.to_yaml`` elsewhere.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ffexp._compat.gate import supported

#: the omegaconf series whose ``to_yaml`` this copies
TESTED = ((2, 3),)


@cache
def _dumper():
    import yaml
    if not getattr(yaml, "__with_libyaml__", False) or not supported(
            "YAML written with libyaml", "omegaconf", TESTED):
        return None
    from omegaconf._utils import get_omega_conf_dumper

    class Dumper(yaml.CDumper):   # OmegaConf's representers, libyaml's emitter
        pass

    Dumper.yaml_representers = dict(get_omega_conf_dumper().yaml_representers)
    return Dumper


def to_yaml(node: Any) -> str:
    """``OmegaConf.to_yaml(node)`` (``node`` a DictConfig or ListConfig, not resolved)."""
    from omegaconf import OmegaConf
    dumper = _dumper()
    if dumper is None:
        return OmegaConf.to_yaml(node)
    import yaml
    container = OmegaConf.to_container(node, resolve=False, enum_to_str=True)
    return yaml.dump(container, default_flow_style=False, allow_unicode=True, sort_keys=False,
                     Dumper=dumper)
