"""What the ``ffexp`` command says about itself: ``--help`` text, ``--version``, and the Hydra
flags that Hydra itself would answer with a traceback or silently ignore.

Imports nothing heavier than the standard library: ``ffexp --help`` and ``ffexp --version``
must start fast (no MLflow, no matplotlib).
"""

from __future__ import annotations

from importlib import metadata, resources

#: config groups a user picks; Hydra would also list the ConfigStore's internal ``schema``
INTERNAL_GROUPS = ("hydra", "schema")

ABOUT = """\
ffexp trains a pure-numpy feedforward network on a scikit-learn toy dataset, records the run in
MLflow (params, per-epoch costs and per-layer gradient norms, plots, the model) and, with -m,
sweeps any choice below. Compare runs with `mlflow ui`, summarize a sweep with `ffexp-report`."""

EXAMPLES = """\
  ffexp                                        the default job: moons, relu, he, mini-batch
  ffexp dataset=iris activation=tanh           pick options of the groups below
  ffexp train.epochs=50 optimizer.lr=0.5       set any key of the config below
  ffexp -m activation=relu,tanh seed=0,1,2     a sweep: one MLflow run per job, one parent
  ffexp -m +experiment=initialization          a study from experiments/
  ffexp --cfg job                              print the composed config, run nothing
  ffexp --version                              ffexp's version and its main libraries'"""


def groups_text() -> str:
    """``group: option, option, ...`` for every user-facing config group of the package's conf/."""
    root = resources.files("ffexp.conf")
    lines = []
    for group in sorted(p for p in root.iterdir() if p.is_dir()):
        if group.name in INTERNAL_GROUPS or group.name.startswith(("_", ".")):
            continue
        options = sorted(p.name[:-5] for p in group.iterdir() if p.name.endswith(".yaml"))
        if options:
            lines.append(f"  {group.name}: {', '.join(options)}")
    return "\n".join(lines)


def help_template() -> str:
    """The text of ``ffexp --help``; Hydra substitutes $CONFIG (the composed config)."""
    return (f"{ABOUT}\n\nExamples:\n{EXAMPLES}\n\n"
            f"Config groups (group=option; `+experiment=<name>` adds a study's sweep):\n"
            f"{groups_text()}\n\n"
            "Hydra's flags: ffexp --hydra-help. Every key of the config can be set as key=value:\n\n"
            "$CONFIG")


def register_help() -> None:
    """``${ffexp_help:}`` (conf/config.yaml's hydra.help.template) resolves to help_template()."""
    from ffexp.launch.config import add_resolver
    add_resolver("ffexp_help", help_template)


def version_text() -> str:
    """``ffexp 0.1.0 (numpy 2.4.6, scikit-learn ..., hydra-core ..., mlflow ...)``."""
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    libs = ", ".join(f"{d} {version(d)}" for d in ("numpy", "scikit-learn", "hydra-core", "mlflow"))
    return f"ffexp {version('ffexp')} ({libs})"


#: Hydra's flags that take no value, and those that take one (``--info``'s is optional: one of
#: its choices, else none); ``--flag=value`` is one token either way
_BARE_FLAGS = frozenset({"-m", "--multirun", "-r", "--run", "--resolve", "-h", "--help",
                         "-hc", "--hydra-help", "--version"})
_VALUE_FLAGS = frozenset({"-c", "--cfg", "-p", "--package", "-cp", "--config-path", "-cn",
                          "--config-name", "-cd", "--config-dir", "--experimental-rerun",
                          "-sc", "--shell-completion"})
_INFO_FLAGS = frozenset({"-i", "--info"})
_INFO_CHOICES = frozenset({"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"})


def flags_first(argv: list[str]) -> list[str]:
    """``argv`` with Hydra's flags (and their values) moved before the overrides, each group in
    its order.

    Hydra's argparse takes the overrides as one positional list, so ``ffexp seed=1 -m
    activation=relu,tanh`` would stop at "unrecognized arguments: activation=relu,tanh" and
    print the usage; flags and overrides may come in any order here. A token after ``--`` and
    anything unknown stays where it is among the overrides."""
    flags: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        name = token.split("=", 1)[0]
        if token == "--":
            rest.extend(argv[i:])
            break
        if name in _BARE_FLAGS or ("=" in token and token.startswith("-")
                                   and name in _VALUE_FLAGS | _INFO_FLAGS):
            flags.append(token)
        elif token in _VALUE_FLAGS:
            flags.extend(argv[i:i + 2])
            i += 1
        elif token in _INFO_FLAGS:
            flags.append(token)
            if i + 1 < len(argv) and argv[i + 1] in _INFO_CHOICES:
                flags.append(argv[i + 1])
                i += 1
        else:
            rest.append(token)
        i += 1
    return flags + rest


def _has(argv: list[str], *flags: str) -> bool:
    return any(a in flags or a.split("=", 1)[0] in flags for a in argv)


def flag_problem(argv: list[str], environ: dict[str, str]) -> str | None:
    """Why a combination of Hydra flags cannot work, or None.

    Hydra raises a traceback for ``--resolve`` without ``--cfg``/``--help`` and for
    ``--shell-completion`` without a subcommand, and runs the job, ignoring the flag, for
    ``--package`` without ``--cfg``."""
    shows = _has(argv, "--cfg", "-c", "--help", "-h")
    if _has(argv, "--resolve") and not shows:
        return "--resolve goes with --cfg or --help (e.g. ffexp --cfg job --resolve)"
    if _has(argv, "--package", "-p") and not _has(argv, "--cfg", "-c"):
        return "--package/-p goes with --cfg (e.g. ffexp --cfg job -p model)"
    if _has(argv, "--shell-completion", "-sc"):
        modes = [a.split("=", 1)[0] for a in argv if a.split("=", 1)[0] in
                 ("install", "uninstall", "query")]
        if len(modes) != 1:
            return ("--shell-completion takes one of install=SHELL, uninstall=SHELL, query=SHELL "
                    "(SHELL: bash, zsh, fish; e.g. eval \"$(ffexp --shell-completion install=bash)\")")
        if modes[0] == "query" and "COMP_LINE" not in environ:
            return "--shell-completion query=SHELL is called by the shell (it reads COMP_LINE)"
    return None
