"""The version gate of every private-API path in ffexp._compat.

``supported(name, distribution, tested)`` says whether the installed ``distribution``'s
release (major, minor) is one of ``tested``, the series that ffexp's tests run the private path
against. Outside them ffexp takes the library's public path and warns once per name (a
``UserWarning``, and one line in the log). ``FFEXP_PUBLIC_ONLY=1`` takes every public path, as
the tests of the fallbacks do.
"""

from __future__ import annotations

import logging
import os
import warnings
from functools import cache
from importlib import metadata

log = logging.getLogger(__name__)

#: the environment variable that switches every private path off
PUBLIC_ONLY_ENV = "FFEXP_PUBLIC_ONLY"


def release(distribution: str) -> tuple[int, ...] | None:
    """The installed distribution's release numbers (``1.4.0rc3`` -> (1, 4, 0)), or None."""
    from packaging.version import InvalidVersion, Version
    try:
        return Version(metadata.version(distribution)).release
    except (metadata.PackageNotFoundError, InvalidVersion):
        return None


@cache
def supported(name: str, distribution: str, tested: tuple[tuple[int, int], ...]) -> bool:
    """Whether ffexp may take the private path ``name``: the installed ``distribution`` is of a
    tested (major, minor) series (a pre-release of a later one is not) and FFEXP_PUBLIC_ONLY is
    not set. Warns once per ``name`` when not."""
    if os.environ.get(PUBLIC_ONLY_ENV) == "1":
        return False
    installed = release(distribution)
    version = metadata.version(distribution) if installed else "not installed"
    if installed is not None and installed[:2] in tested:
        from packaging.version import Version
        if not Version(version).is_prerelease:
            return True
    series = ", ".join(".".join(map(str, t)) + ".x" for t in tested)
    message = (f"ffexp: {name} is tested with {distribution} {series}, not {version}: "
               f"using the library's public path instead (slower, the same results)")
    warnings.warn(message, UserWarning, stacklevel=3)
    log.warning("%s", message)
    return False
