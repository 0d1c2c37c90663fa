"""Training and prediction throughput of Roost and CrabNet: stoichnet vs the same
architecture in PyTorch on the CPU, built from the same weights.

For each model the stoichnet network (``stoichnet.models.roost`` / ``crabnet``) is built,
and a PyTorch module holding the same weights (aviary's scatter formulation for Roost,
``torch.nn.TransformerEncoderLayer`` for CrabNet); their predictions on the batch are
checked equal (float32, 1e-4 relative) before anything is timed. One training step is
forward, MAE loss, backward and an Adam step, on a batch of CritExam__Ef training
formulas (dropout off on both sides, so both compute the same function). The engines
alternate round by round with the same number of threads (threadpoolctl for NumPy's BLAS,
``torch.set_num_threads``); each rate is the median round. Then prediction throughput for
``--predict-rows`` formulas: stoichnet from formula strings (parse + sets + predict) and
from ready sets; PyTorch from ready tensors.

    python benchmarks/set_models_vs_torch.py [--models roost,crabnet] [--batch-size 256]
        [--rounds 5] [--steps 3] [--threads 1] [--predict-rows 100000] [--small]

``--small`` uses tiny widths (a smoke test of the script, not a benchmark).
Needs STOICHNET_DATA (the CritExam__Ef training file).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from stoichnet.chem import load_dataset
from stoichnet.chem.element_sets import element_embedding, element_sets, set_width
from stoichnet.models import crabnet, roost
from stoichnet.nn import optimizers

F = torch.nn.functional
SMALL = {"roost": dict(d=16, n_graph=1, heads=2, gate_hidden=(16,), message_hidden=(16,),
                       trunk_hidden=(32,), out_hidden=(32, 16)),
         "crabnet": dict(d_model=16, n_layers=1, heads=2, hidden=32, out_hidden=(32, 16),
                         dropout=0.0)}
FULL = {"roost": {}, "crabnet": dict(d_model=256, hidden=1024, dropout=0.0)}  # the estimator's


def _linear(dense) -> torch.nn.Linear:
    W = dense.params["W"]
    lin = torch.nn.Linear(*W.shape, bias=dense.use_bias)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(W.T.copy()))
        if dense.use_bias:
            lin.bias.copy_(torch.from_numpy(dense.params["b"].copy()))
    return lin


def _mlp(layers) -> torch.nn.Sequential:
    mods = []
    for dense in layers:
        mods.append(_linear(dense))
        if dense.activation == "leaky_relu":
            mods.append(torch.nn.LeakyReLU(0.01))
    return torch.nn.Sequential(*mods)


class _Residual(torch.nn.Module):
    def __init__(self, block, slope=None):
        super().__init__()
        self.fc, self.res = _linear(block.dense), _linear(block.projection) if block.projection else None
        self.slope = slope

    def forward(self, x):
        a = self.fc(x)
        a = F.relu(a) if self.slope is None else F.leaky_relu(a, self.slope)
        return a + (x if self.res is None else self.res(x))


class TorchCrabNet(torch.nn.Module):
    """CrabNet from a stoichnet ``crabnet()`` network's weights (batch-first, key padding mask)."""

    def __init__(self, model):
        super().__init__()
        layers = model.layers
        self.register_buffer("table", torch.tensor(element_embedding().table, dtype=torch.float32))
        self.embed = _linear(layers[1].layer)
        enc = layers[2]
        self.scale = torch.nn.Parameter(torch.from_numpy(enc.params["scale"].copy()))
        self.register_buffer("pe", torch.from_numpy(enc.table.copy()))
        self.resolution = enc.resolution
        self.encoders = torch.nn.ModuleList()
        blocks = [layer for layer in layers if type(layer).__name__ == "TransformerEncoderBlock"]
        for block in blocks:
            d = block.norm1.params["gamma"].shape[0]
            ref = torch.nn.TransformerEncoderLayer(d, block.heads, block.hidden, dropout=0.0,
                                                   batch_first=True)
            att = block.attention.params
            with torch.no_grad():
                ref.self_attn.in_proj_weight.copy_(torch.from_numpy(att["W_in"].T.copy()))
                ref.self_attn.in_proj_bias.copy_(torch.from_numpy(att["b_in"].copy()))
                ref.self_attn.out_proj.weight.copy_(torch.from_numpy(att["W_out"].T.copy()))
                ref.self_attn.out_proj.bias.copy_(torch.from_numpy(att["b_out"].copy()))
                for ours, theirs in ((block.ff1, ref.linear1), (block.ff2, ref.linear2)):
                    theirs.weight.copy_(torch.from_numpy(ours.params["W"].T.copy()))
                    theirs.bias.copy_(torch.from_numpy(ours.params["b"].copy()))
                for ours, theirs in ((block.norm1, ref.norm1), (block.norm2, ref.norm2)):
                    theirs.weight.copy_(torch.from_numpy(ours.params["gamma"].copy()))
                    theirs.bias.copy_(torch.from_numpy(ours.params["beta"].copy()))
            self.encoders.append(ref)
        residual = [layer.layer for layer in layers if type(layer).__name__ == "PerMember"][1:]
        self.residual = torch.nn.ModuleList(_Residual(r, 0.01) for r in residual)
        self.out = _linear(layers[-1])

    def _rows(self, w, log):
        if log:
            w = torch.clamp(0.0025 * torch.log2(w) ** 2, max=1)
        return torch.round(torch.clamp(w, min=1 / self.resolution) * self.resolution).long() - 1

    def forward(self, ids, w):
        mask = ids > 0
        wc = torch.where(mask, w, torch.ones_like(w))
        x = self.embed(self.table[ids]) * 2 ** self.scale[0]
        half = self.pe.shape[1]
        enc = torch.cat([self.pe[self._rows(wc, False)] * 2 ** (1 - self.scale[1]) ** 2,
                         self.pe[self._rows(wc, True)] * 2 ** (1 - self.scale[2]) ** 2], dim=-1)
        x = x + enc[..., : 2 * half]
        for ref in self.encoders:
            x = ref(x, src_key_padding_mask=~mask)
        for block in self.residual:
            x = block(x)
        x = x.masked_fill(~mask[..., None], 0)
        return self.out(x.sum(1) / mask.sum(1, keepdim=True))


def _attention(rows, index, weights, gate, message, power, n_groups):
    """aviary.segments.WeightedAttentionPooling.forward."""
    e = gate(rows)
    top = torch.zeros(n_groups, 1).scatter_reduce(0, index[:, None], e, "amax",
                                                  include_self=False)
    e = weights[:, None] ** power * (e - top[index]).exp()
    e = e / (torch.zeros(n_groups, 1).index_add(0, index, e)[index] + 1e-10)
    msg = message(rows)
    return torch.zeros(n_groups, msg.shape[1]).index_add(0, index, e * msg)


class _Heads(torch.nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.gates = torch.nn.ModuleList(_mlp(g) for g in layer.gates)
        self.messages = torch.nn.ModuleList(_mlp(m) for m in layer.messages)
        self.power = torch.nn.Parameter(torch.from_numpy(layer.own_params["pow"].copy()))

    def forward(self, rows, index, weights, n_groups):
        return torch.stack([_attention(rows, index, weights, g, m, self.power[k], n_groups)
                            for k, (g, m) in enumerate(zip(self.gates, self.messages, strict=True))
                            ]).mean(0)


class TorchRoost(torch.nn.Module):
    """Roost from a stoichnet ``roost()`` network's weights, in aviary's formulation: the
    members of the batch stacked, pairs and crystals as index tensors."""

    def __init__(self, model):
        super().__init__()
        names = [type(layer).__name__ for layer in model.layers]
        self.register_buffer("table", torch.tensor(element_embedding().table, dtype=torch.float32))
        self.embed = _linear(model.layers[1].layer)
        self.graphs = torch.nn.ModuleList(_Heads(layer) for layer, n in zip(model.layers, names,
                                                                            strict=True)
                                          if n == "RoostMessage")
        self.pool = _Heads(model.layers[names.index("WeightedAttentionPooling")])
        head = model.layers[names.index("WeightedAttentionPooling") + 1:]
        self.head = torch.nn.ModuleList(
            _Residual(layer) if type(layer).__name__ == "ResidualDense" else _linear(layer)
            for layer in head)
        self.relu_after = [getattr(layer, "activation", None) == "relu" and
                           type(layer).__name__ == "Dense" for layer in head]

    @staticmethod
    def indices(X: np.ndarray):
        """aviary's data: ids, weights, crystal index, self/neighbour pair indices."""
        mask = X[..., 0] > 0
        sizes = mask.sum(1)
        start = np.repeat(np.cumsum(sizes) - sizes, sizes * sizes)
        k = np.repeat(sizes, sizes * sizes)
        local = np.arange(len(k)) - np.repeat(np.cumsum(sizes * sizes) - sizes * sizes,
                                              sizes * sizes)
        self_idx, nbr_idx = start + local // k, start + local % k
        return (torch.tensor(X[..., 0][mask].astype(np.int64)), torch.tensor(X[..., 1][mask]),
                torch.tensor(np.nonzero(mask)[0]), torch.tensor(self_idx), torch.tensor(nbr_idx))

    def forward(self, ids, w, crystal, self_idx, nbr_idx, n):
        h = torch.cat([self.embed(self.table[ids]), w[:, None]], dim=1)
        for graph in self.graphs:
            pairs = torch.cat([h[self_idx], h[nbr_idx]], dim=1)
            h = graph(pairs, self_idx, w[nbr_idx], len(h)) + h
        x = self.pool(h, crystal, w, n)
        for layer, relu in zip(self.head, self.relu_after, strict=True):
            x = F.relu(layer(x)) if relu else layer(x)
        return x


def _build(name, sizes, width, seed=0):
    model = (roost if name == "roost" else crabnet)(1, seed=seed, **sizes)
    model.build((width, 2))
    model.compile(optimizers.Adam(learning_rate=1e-4), "mae")
    return model, (TorchRoost if name == "roost" else TorchCrabNet)(model)


def _torch_inputs(name, X):
    if name == "roost":
        return (*TorchRoost.indices(X), len(X))
    return torch.tensor(X[..., 0].astype(np.int64)), torch.tensor(X[..., 1])


def _training_rates(model, ref, inputs, X, y, rounds: int, steps: int) -> dict:
    """Formulas per second of ``steps`` training steps, per round, each engine in turn."""
    adam = torch.optim.Adam(ref.parameters(), lr=1e-4)
    target = torch.tensor(y)

    def torch_steps():
        for _ in range(steps):
            adam.zero_grad()
            F.l1_loss(ref(*inputs), target).backward()
            adam.step()

    def our_steps():
        for _ in range(steps):
            model.train_on_batch(X, y)

    rates = {"stoichnet": [], "pytorch": []}
    for _ in range(rounds):
        for engine, run in (("stoichnet", our_steps), ("pytorch", torch_steps)):
            start = time.perf_counter()
            run()
            rates[engine].append(steps * len(X) / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="roost,crabnet")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--predict-rows", type=int, default=100_000)
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.mha.set_fastpath_enabled(False)  # train-mode math on both sides
    rows = load_dataset("CritExam__Ef", "train", progress=False)
    width = set_width(element_sets(rows.formula).X.shape[1])
    batch = rows.sample(args.batch_size, random_state=0)
    X = element_sets(batch.formula, width=width).X
    y = batch.target.to_numpy(dtype=np.float32)[:, None]
    for name in args.models.split(","):
        sizes = (SMALL if args.small else FULL)[name]
        with threadpool_limits(args.threads):
            model, ref = _build(name, sizes, width)
            inputs = _torch_inputs(name, X)
            ours, theirs = model.predict(X), ref(*inputs).detach().numpy()
            error = np.linalg.norm(ours - theirs) / np.linalg.norm(theirs)
            assert error < 1e-4, f"{name}: outputs differ ({error:.2e})"
            rates = _training_rates(model, ref, inputs, X, y, args.rounds, args.steps)
            ours_rate = statistics.median(rates["stoichnet"])
            torch_rate = statistics.median(rates["pytorch"])
            print(f"{name} {'(small) ' if args.small else ''}training, batch {len(X)}, "
                  f"{args.threads} thread(s): stoichnet {ours_rate:,.0f} formulas/s, PyTorch "
                  f"{torch_rate:,.0f} formulas/s, ratio {ours_rate / torch_rate:.2f}")
            formulas = rows.formula.sample(args.predict_rows, replace=True, random_state=1)
            start = time.perf_counter()
            sets = element_sets(formulas, width=width).X
            featurize = time.perf_counter() - start
            start = time.perf_counter()
            model.predict(sets, batch_size=4096)
            predict = time.perf_counter() - start
            start = time.perf_counter()
            with torch.no_grad():
                for lo in range(0, len(sets), 4096):
                    ref(*_torch_inputs(name, sets[lo:lo + 4096]))
            torch_predict = time.perf_counter() - start
            print(f"{name} prediction of {len(formulas):,} formulas: stoichnet "
                  f"{len(formulas) / (featurize + predict):,.0f} formulas/s from strings "
                  f"({featurize:.2f} s sets + {predict:.2f} s network), PyTorch "
                  f"{len(formulas) / torch_predict:,.0f} formulas/s from ready inputs")


if __name__ == "__main__":
    main()
