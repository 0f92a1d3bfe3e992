"""Signal propagation at initialization: measured per-layer spread of A[l] and of ∂J/∂Z[l] in
deep, wide nets, against the analytic predictions. No training, so exact and cheap (~10 s).

For each hidden activation (tanh, relu) and initialization, a net of L = 30 layers of width
n = 256 (input, hidden and output; linear output, quadratic cost) is built with ffexp.Network
and run forward and backward once on m = 512 examples X ~ N(0, 1). The targets are Y = Ŷ − E
with E ~ N(0, 1), so that the error sent back, ∂J/∂Z[L] = E/m, is independent of the forward
pass, as the prediction assumes. Per layer l it records std(A[l]) and std(∂J/∂Z[l]) over all entries, averaged over 3 seeds.

Predictions: the infinite-width ("mean-field") recursion for zero-mean weights of variance v,
biases 0, all widths n, Z ~ N(0, q) elementwise:

    q[1] = n v E[x²],    q[l] = n v E[g(z)²] (z ~ N(0, q[l-1])),   std(A[l]) = sd of g(z), z ~ N(0, q[l])
    r[L] = measured Var(∂J/∂Z[L]),   r[l-1] = n v r[l] E[g'(z)²] (z ~ N(0, q[l-1]))

with Gauss-Hermite quadrature for the expectations. It contains the closed forms quoted in the
README: for tanh near 0 with U(±1/√n) weights (v = 1/(3n)) the variance shrinks by 1/3 per
layer (Glorot & Bengio 2010); for ReLU, Xavier (v = 1/n here, fan_in = fan_out) halves it per
layer (RMS ∝ 2^(−l/2)) and He (v = 2/n) keeps it flat (He et al. 2015).

Writes ``measure.md`` and ``measure.png`` in this folder (or --output); same bytes on a rerun.

    python experiments/signal_propagation/measure.py
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/studylib.py (run as a script, not a package)

from studylib import fmt, md_table, pyplot, save_figure  # noqa: E402

from ffexp import Network  # noqa: E402
from ffexp.nn import make_loss  # noqa: E402

WIDTH, LAYERS, M, SEEDS = 256, 30, 512, (0, 1, 2)  # n and L (--width, --layers), m, seeds
SHOWN_LAYERS = (1, 2, 5, 10, 15, 20, 25, 29)
INIT_NAMES = ("U(±1/√n)", "xavier", "he", "random 0.01")


def inits(n: int) -> dict[str, tuple[dict, float]]:
    """label -> (Network init keyword arguments, the weight variance v) for width n."""
    return {
        "U(±1/√n)": (dict(init="random", init_distribution="uniform", init_scale=1 / math.sqrt(n)),
                     1 / (3 * n)),
        "xavier": (dict(init="xavier"), 2 / (n + n)),
        "he": (dict(init="he"), 2 / n),
        "random 0.01": (dict(init="random", init_scale=0.01), 1e-4),
    }
G = {"tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
     "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float))}
#: the per-layer factor of std(A[l]) the papers state, where they state one
CLAIMS = {("tanh", "U(±1/√n)"): (1 / math.sqrt(3), "1/√3 (variance ×1/3, Glorot & Bengio)"),
          ("relu", "xavier"): (1 / math.sqrt(2), "1/√2 (RMS ∝ 2^(−l/2), He et al.)"),
          ("relu", "he"): (1.0, "1 (flat, He et al.)")}

_nodes, _weights = np.polynomial.hermite_e.hermegauss(100)  # even: no node at 0, where relu' jumps
_weights = _weights / _weights.sum()


def gauss(f, q: float) -> float:
    """E[f(z)] for z ~ N(0, q)."""
    return float(np.dot(_weights, f(math.sqrt(q) * _nodes)))


def predict(act: str, v: float, top_grad_var: float, n: int, L: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean-field std(A[l]) for l = 1..L-1 and std(∂J/∂Z[l]) for l = 1..L."""
    g, dg = G[act]
    q = np.empty(L + 1)
    q[1] = n * v * 1.0
    for l in range(2, L + 1):
        q[l] = n * v * gauss(lambda z: g(z) ** 2, q[l - 1])
    sd_a = np.array([math.sqrt(max(gauss(lambda z: g(z) ** 2, q[l]) - gauss(g, q[l]) ** 2, 0.0))
                     for l in range(1, L)])
    r = np.empty(L + 1)
    r[L] = top_grad_var
    for l in range(L, 1, -1):
        r[l - 1] = n * v * r[l] * gauss(lambda z: dg(z) ** 2, q[l - 1])
    return sd_a, np.sqrt(r[1:])


def measure(act: str, init_kwargs: dict, n: int, L: int) -> tuple[np.ndarray, np.ndarray]:
    """Seed-averaged std(A[l]) (l = 1..L-1) and std(∂J/∂Z[l]) (l = 1..L) at initialization."""
    sd_a, sd_dz = np.zeros(L - 1), np.zeros(L)
    loss = make_loss("mse")
    for seed in SEEDS:
        rng = np.random.default_rng(1000 + seed)
        X, E = rng.standard_normal((n, M)), rng.standard_normal((n, M))
        net = Network([n] * (L + 1), hidden_activation=act, output_activation="linear",
                      seed=seed, **init_kwargs)
        Zs, As = net.forward_all(X)
        Y = As[L] - E  # so that ∂J/∂Z[L] = E/m, independent of the forward pass
        _, _, dZ = net.backward(Zs, As, Y, loss)
        sd_a += np.array([As[l].std() for l in range(1, L)]) / len(SEEDS)
        sd_dz += np.array([d.std() for d in dZ]) / len(SEEDS)
    return sd_a, sd_dz


def per_layer_factor(sd: np.ndarray, first: int, last: int) -> float:
    """Geometric-mean ratio sd[l+1]/sd[l] between layers ``first`` and ``last`` (1-based)."""
    if sd[last - 1] <= 0 or sd[first - 1] <= 0:
        return float("nan")
    return float((sd[last - 1] / sd[first - 1]) ** (1 / (last - first)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", type=Path, default=HERE, help="folder (default: %(default)s)")
    p.add_argument("--layers", type=int, default=LAYERS, help="L (default: %(default)s)")
    p.add_argument("--width", type=int, default=WIDTH, help="n (default: %(default)s)")
    args = p.parse_args()
    out, L, n = args.output, args.layers, args.width
    INITS = inits(n)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for act in G:
        for name, (kwargs, v) in INITS.items():
            sd_a, sd_dz = measure(act, kwargs, n, L)
            pa, pdz = predict(act, v, float(sd_dz[-1]) ** 2, n, L)
            results[act, name] = (sd_a, sd_dz, pa, pdz)

    summary = []
    for (act, name), (sd_a, sd_dz, pa, pdz) in results.items():
        claim = CLAIMS.get((act, name))
        summary.append([act, name, fmt(per_layer_factor(sd_a, 2, L - 1)),
                        fmt(per_layer_factor(pa, 2, L - 1)), claim[1] if claim else "—",
                        fmt(per_layer_factor(sd_dz, 2, L)), fmt(per_layer_factor(pdz, 2, L))])
    blocks = [
        f"Nets of L = {L} layers of width n = {n} (linear output, quadratic cost, Y = Ŷ − E so that ∂J/∂Z[L] = E/m with E ~ N(0, 1)), "
        f"m = {M} "
        f"examples X ~ N(0, 1), biases 0; std over all entries of a layer, mean over seeds "
        f"{', '.join(map(str, SEEDS))}. Prediction: the infinite-width recursion (see measure.py).",
        "## Per-layer factor\n\nGeometric mean of std(layer l+1) / std(layer l), forward over "
        f"A[2..{L - 1}] and backward over ∂J/∂Z[2..{L}] (a backward factor above 1 means the error "
        "shrinks on its way down to the input, below 1 that it grows).\n\n" + md_table(
            ["activation", "init", "A: measured", "A: predicted", "A: the papers' rule",
             "∂J/∂Z: measured", "∂J/∂Z: predicted"], summary),
    ]
    for act in G:
        rows = []
        for l in [l for l in SHOWN_LAYERS if l < L]:
            row = [str(l)]
            for name in INITS:
                sd_a, sd_dz, pa, pdz = results[act, name]
                row += [f"{fmt(sd_a[l - 1], 3)} / {fmt(pa[l - 1], 3)}",
                        f"{fmt(sd_dz[l - 1], 3)} / {fmt(pdz[l - 1], 3)}"]
            rows.append(row)
        header = ["l"] + [f"{name}: {what}" for name in INITS for what in ("std A", "std ∂J/∂Z")]
        blocks.append(f"## {act}: measured / predicted per layer\n\n" + md_table(header, rows))
    blocks.append("![std of A[l] and of ∂J/∂Z[l] per layer](measure.png)")
    path = out / "measure.md"
    path.write_text("# Signal propagation at initialization\n\n" + "\n\n".join(blocks) + "\n")

    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    colors = dict(zip(INITS, ("tab:red", "tab:blue", "tab:green", "tab:gray")))
    for col, act in enumerate(G):
        for name in INITS:
            sd_a, sd_dz, pa, pdz = results[act, name]
            c = colors[name]
            axes[0, col].semilogy(range(1, L), sd_a, "o", ms=3, color=c, label=f"{name} measured")
            axes[0, col].semilogy(range(1, L), pa, "-", lw=1, color=c, label=f"{name} predicted")
            axes[1, col].semilogy(range(1, L + 1), sd_dz, "o", ms=3, color=c)
            axes[1, col].semilogy(range(1, L + 1), pdz, "-", lw=1, color=c)
        axes[0, col].set_title(f"{act}: std of A[l]")
        axes[1, col].set_title(f"{act}: std of ∂J/∂Z[l]")
        axes[1, col].set_xlabel("layer l")
    axes[0, 0].legend(fontsize=7, ncol=2)
    fig.suptitle(f"At initialization, {L} layers of {n}: measured (dots) and predicted (lines)")
    fig.tight_layout()
    save_figure(fig, out / "measure.png")
    print(f"measure: wrote {path} and {out / 'measure.png'}")


if __name__ == "__main__":
    main()
