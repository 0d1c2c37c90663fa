"""Time to accuracy: ElemNet-17 on CritExam__Ef by a named training recipe, in stoichnet
or (``--engine torch``) the same recipe in PyTorch.

Trains ElemNet-17 (86 -> 1024x4 -> 512x3 -> 256x3 -> 128x3 -> 64x2 -> 32 -> 1, ReLU,
4,631,361 parameters, Glorot-uniform kernels, zero biases) on the 59,509 training formulas
(element fractions), scores the 12,752 validation formulas after every epoch, early-stops
on validation MAE with the best weights restored, and scores the 12,753 test formulas once
at the end. Both engines follow one ``stoichnet.models.recipes.Recipe``: dropout rates and
what dropout does at inference, batch size, optimizer (epsilon 1e-7 in both), learning-rate
schedule (the same schedule object sets PyTorch's rate before every step), loss, epochs and
patience. Only this benchmark imports torch.

``--model roost`` / ``crabnet`` trains that set model (stoichnet only, the estimators'
defaults: CrabNet at d_model 256) on the element sets of the same rows by the recipe, on
targets standardised by the training rows' mean and standard deviation (as the
estimators do; val and test MAE are converted back to eV/atom), with a checkpoint every
epoch (``--checkpoint DIR``; rerun the same command to resume) and the val/test
predictions of the kept weights written to ``--predictions`` (for an ensemble of runs).

Appends one row per epoch to ``--csv`` as it goes (engine, recipe, phase="epoch", epoch,
wall_s, cpu_s, load_1min, lr, train_loss, val_mae) and, at the end, one row with
phase="final": the epoch whose weights were kept, the total wall/CPU time and its val and
test MAE (eV/atom); a recipe with dropout adds rows "final dropout off", "final mc 1" and
"final mc 10" (the same weights predicted each way). ``--rf`` adds the random forest (100
trees, Magpie features; its times include featurizing) as one final row. Writes ``--png``
(validation MAE vs wall and vs CPU minutes for every run in the CSV) after every run.
wall_s of a network counts training and validation, not loading and featurizing the data.
The machine may be shared: cpu_s (all threads of this process) and the 1-minute load
average show how much of the wall time this run actually got.

    python benchmarks/time_to_accuracy.py --recipe stoichnet [--engine torch] \\
        [--epochs N] [--max-minutes M] [--threads 2] [--subset n] [--csv F] [--png F]
    python benchmarks/time_to_accuracy.py --model roost|crabnet [--epochs N] \\
        [--learning-rate R] [--threads 1] [--checkpoint DIR] [--predictions F.npz] \\
        [--warm-start CKPT] [--loss laplace_nll] [--swa-from N]
    python benchmarks/time_to_accuracy.py --rf
    python benchmarks/time_to_accuracy.py --pretrained-predictions F.npz
    python benchmarks/time_to_accuracy.py --ensemble A.npz B.npz [...]
    python benchmarks/time_to_accuracy.py --plot-only

``--pretrained-predictions`` writes the shipped formation-energy network's val/test
predictions (trained on these splits, no training here) in ``--predictions``' format;
``--ensemble`` prints the val and test MAE of each prediction file, of their mean and of
a mean weighted by greedy ensemble selection on the validation rows (Caruana et al. 2004),
the two with 95% bootstrap intervals over the rows.
"""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import math
import os
import time
from pathlib import Path

import matplotlib
import numpy as np
from threadpoolctl import threadpool_limits

from stoichnet.chem import ElementFractions, load_dataset
from stoichnet.chem.element_sets import element_sets, set_width
from stoichnet.evaluate.metrics import bootstrap_ci, mae
from stoichnet.models import (
    ELEMNET_17,
    RECIPES,
    crabnet,
    elemnet,
    get_recipe,
    load_pretrained,
    parse_arch,
    rf_magpie,
    roost,
)
from stoichnet.models.estimators import MonteCarloValidation, TimeBudget
from stoichnet.nn import (
    Callback,
    EarlyStopping,
    StochasticWeightAveraging,
    load_checkpoint_weights,
    losses,
    optimizers,
    schedules,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ELEMNET_TEST_MAE = 0.0707
"""Published ElemNet test MAE on CritExam__Ef (eV/atom), the target."""

COLUMNS = ["engine", "recipe", "phase", "epoch", "wall_s", "cpu_s", "load_1min", "lr",
           "train_loss", "val_mae", "test_mae"]


class RunLog:
    """Appends rows of ``COLUMNS`` to a CSV file, flushed at once."""

    def __init__(self, path: Path, engine: str, recipe: str):
        self.path, self.engine, self.recipe = path, engine, recipe
        new = not path.exists() or path.stat().st_size == 0
        self._file = path.open("a", newline="")
        self._writer = csv.DictWriter(self._file, COLUMNS)
        if new:
            self._writer.writeheader()
            self._file.flush()  # another run may append to the same file
        self.start_wall, self.start_cpu = time.perf_counter(), time.process_time()

    def row(self, phase: str, epoch: int, **values) -> dict:
        row = {"engine": self.engine, "recipe": self.recipe, "phase": phase, "epoch": epoch,
               "wall_s": round(time.perf_counter() - self.start_wall, 2),
               "cpu_s": round(time.process_time() - self.start_cpu, 2),
               "load_1min": os.getloadavg()[0]} | values
        self._writer.writerow(row)
        self._file.flush()
        print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in row.items()), flush=True)
        return row

    def close(self) -> None:
        self._file.close()


class EpochLogger(Callback):
    """Writes a stoichnet run's per-epoch row (val MAE: ``monitor`` from the logs).

    ``scale``: of standardised targets, to report MAEs in eV/atom; the training loss is
    scaled by ``loss_scale`` (1 for a likelihood loss, which has no unit)."""

    def __init__(self, log: RunLog, monitor: str, scale: float = 1.0, loss_scale: float = 1.0):
        self.log, self.monitor, self.scale, self.loss_scale = log, monitor, scale, loss_scale

    def on_epoch_end(self, epoch, logs=None):
        self.log.row("epoch", epoch + 1, lr=self.model.optimizer.current_learning_rate,
                     train_loss=logs["loss"] * self.loss_scale,
                     val_mae=logs[self.monitor] * self.scale)


def load_data(subset: int | None, seed: int, sets: bool = False,
              ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train"/"val"/"test": (X, y (n, 1) float32 eV/atom)}, X the (n, 86) float32 element
    fractions or, with ``sets``, the (n, m, 2) element sets (m: the set width of the
    training formulas); with ``subset``, a seeded random ``subset`` training rows and
    subset // 5 val rows."""
    rng = np.random.default_rng(seed)
    frames = {}
    for split in ("train", "val", "test"):
        frame = load_dataset("CritExam__Ef", split=split, progress=False)
        if subset is not None and split != "test":
            n = subset if split == "train" else max(1, subset // 5)
            frame = frame.iloc[np.sort(rng.permutation(len(frame))[:n])]
        frames[split] = frame
    width = set_width(element_sets(frames["train"]["formula"]).X.shape[1]) if sets else None
    return {split: (element_sets(frame["formula"], width).X if sets
                    else ElementFractions().fit_transform(frame["formula"]),
                    frame["target"].to_numpy(np.float32).reshape(-1, 1))
            for split, frame in frames.items()}


SET_MODELS = {"roost": roost,
              "crabnet": lambda n_outputs, seed: crabnet(n_outputs, d_model=256, hidden=1024,
                                                         seed=seed)}
"""The set models at the estimators' defaults (CrabNet's CPU size, see CrabNetRegressor):
name -> f(n_outputs, seed)."""


def learning_rate(recipe, total_steps: int):
    """The recipe's learning rate (a float or a schedule) over ``total_steps`` steps."""
    return schedules.from_name(recipe.schedule, recipe.learning_rate, total_steps,
                               recipe.warmup_fraction)


def train_stoichnet(recipe, data, log: RunLog, seed: int, threads: int, max_minutes):
    """Train by ``recipe`` in stoichnet; returns (epoch kept, predict(X, mc_samples))."""
    X, y = data["train"]
    total_steps = recipe.epochs * math.ceil(len(X) / recipe.batch_size)
    model = elemnet(ELEMNET_17, dropout=recipe.dropout or 0, seed=seed)
    optimizer = optimizers.get({"name": recipe.optimizer, "num_threads": threads,
                                "learning_rate": learning_rate(recipe, total_steps),
                                "weight_decay": recipe.weight_decay})
    model.compile(optimizer=optimizer, loss=recipe.loss)
    callbacks, monitor = [], "val_loss"
    if recipe.inference_dropout == "mc":
        callbacks.append(MonteCarloValidation(*data["val"], recipe.mc_samples, seed=seed))
        monitor = "val_mc_loss"
    stopper = EarlyStopping(monitor=monitor, patience=recipe.patience or recipe.epochs,
                            restore_best_weights=True)
    callbacks += [stopper, EpochLogger(log, monitor)]
    if max_minutes is not None:
        callbacks.append(TimeBudget(60.0 * max_minutes))
    model.fit(X, y, epochs=recipe.epochs, batch_size=recipe.batch_size,
              validation_data=data["val"], callbacks=callbacks, verbose=0, seed=seed)

    def predict(X_eval: np.ndarray, mc_samples: int | None) -> np.ndarray:
        return model.predict(X_eval, mc_samples=mc_samples, seed=seed)  # same masks for val, test

    return stopper.best_epoch + 1, predict


def train_set_model(name, recipe, data, log: RunLog, seed: int, threads: int, max_minutes,
                    checkpoint: Path | None, warm_start: Path | None = None,
                    swa_from: int | None = None):
    """Train the set model ``name`` by ``recipe`` (no dropout recipes) on standardised
    targets, resuming from ``checkpoint`` when it exists; returns (epoch kept, predict).

    ``warm_start``: a checkpoint of an earlier run of the same model whose weights this
    run starts from, with a fresh optimizer and the recipe's whole schedule (a warm
    restart, Loshchilov & Hutter 2017), so that a finished run can be trained further.
    ``swa_from``: keep the mean of the weights at the ends of epochs swa_from, swa_from + 1,
    … (1-based; stochastic weight averaging) instead of the best epoch's weights; the
    epoch returned is then the last."""
    X, y = data["train"]
    mean, scale = float(y.mean()), float(y.std())
    total_steps = recipe.epochs * math.ceil(len(X) / recipe.batch_size)
    loss = losses.get(recipe.loss)  # a likelihood loss: a second output, log scale
    model = SET_MODELS[name](loss.outputs_per_target, seed=seed)
    if warm_start is not None:
        model.build(X.shape[1:])
        try:
            load_checkpoint_weights(warm_start, model)
        except ValueError as err:  # ModelFileError is one too
            raise SystemExit(f"--warm-start: {err}") from None
    model.compile(optimizer=optimizers.get({
        "name": recipe.optimizer, "num_threads": threads,
        "learning_rate": learning_rate(recipe, total_steps),
        "weight_decay": recipe.weight_decay}), loss=recipe.loss, metrics=["mae"])
    # stop on, and log, the MAE of the predicted means whatever the loss
    stopper = EarlyStopping(monitor="val_mae", patience=recipe.patience or recipe.epochs,
                            restore_best_weights=swa_from is None)
    callbacks = [stopper, EpochLogger(log, "val_mae", scale,
                                      1.0 if loss.distributional else scale)]
    if swa_from is not None:
        callbacks.append(StochasticWeightAveraging(swa_from - 1))
    if max_minutes is not None:
        callbacks.append(TimeBudget(60.0 * max_minutes))
    X_val, y_val = data["val"]
    resume = checkpoint if checkpoint is not None and checkpoint.exists() else None
    history = model.fit(X, (y - mean) / scale, epochs=recipe.epochs,
                        batch_size=recipe.batch_size,
                        validation_data=(X_val, (y_val - mean) / scale), callbacks=callbacks,
                        verbose=0, seed=seed, checkpoint=checkpoint, resume=resume)

    def predict(X_eval: np.ndarray, mc_samples: int | None) -> np.ndarray:
        out = model.predict(X_eval)
        if loss.distributional:  # the means; the log scales are not scored here
            out = losses.split_distribution(out)[0]
        return out * scale + mean

    return history.epoch[-1] + 1 if swa_from is not None else stopper.best_epoch + 1, predict


def train_torch(recipe, data, log: RunLog, seed: int, threads: int, max_minutes):
    """The same recipe in PyTorch; returns (epoch kept, predict(X, mc_samples))."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rates = iter(recipe.dropout)
    layers, n_in = [], data["train"][0].shape[1]
    for block in parse_arch(ELEMNET_17):
        for _ in range(block.count):
            layers.append(torch.nn.Linear(n_in, block.units))
            torch.nn.init.xavier_uniform_(layers[-1].weight)
            torch.nn.init.zeros_(layers[-1].bias)
            layers.append(torch.nn.ReLU())
            n_in = block.units
        rate = next(rates, 0.0) if block.dropout else 0.0
        if rate:
            layers.append(torch.nn.Dropout(rate))
    net = torch.nn.Sequential(*layers[:-1])  # linear output unit
    X, y = (torch.from_numpy(a) for a in data["train"])
    steps_per_epoch = math.ceil(len(X) / recipe.batch_size)
    schedule = learning_rate(recipe, recipe.epochs * steps_per_epoch)
    opt_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[recipe.optimizer]
    opt = opt_class(net.parameters(), lr=recipe.learning_rate, eps=1e-7,
                    weight_decay=recipe.weight_decay)

    def predict(X_eval: np.ndarray, mc_samples: int | None) -> np.ndarray:
        """One pass with dropout off (None) or the mean of mc_samples passes with it on."""
        X_eval = torch.from_numpy(X_eval)
        with torch.no_grad():
            if mc_samples is None:
                net.eval()
                return net(X_eval).numpy()
            net.train()
            with torch.random.fork_rng():  # the training masks continue undisturbed
                torch.manual_seed(seed)
                return np.mean([net(X_eval).numpy() for _ in range(mc_samples)], axis=0)

    mc = recipe.mc_samples if recipe.inference_dropout == "mc" else None
    generator = torch.Generator().manual_seed(seed)
    best, best_epoch, best_state, wait, step = math.inf, 0, None, 0, 0
    for epoch in range(1, recipe.epochs + 1):
        net.train()
        order = torch.randperm(len(X), generator=generator)
        total = 0.0
        for i in range(steps_per_epoch):
            idx = order[i * recipe.batch_size:(i + 1) * recipe.batch_size]
            lr = schedule(step) if callable(schedule) else schedule
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.l1_loss(net(X[idx]), y[idx])
            loss.backward()
            opt.step()
            step += 1
            total += loss.item() * len(idx)
        val = _mae(predict(data["val"][0], mc), data["val"][1])
        log.row("epoch", epoch, lr=lr, train_loss=total / len(X), val_mae=val)
        if val < best:
            best, best_epoch, best_state, wait = val, epoch, copy.deepcopy(net.state_dict()), 0
        else:
            wait += 1
        out_of_time = (max_minutes is not None
                       and time.perf_counter() - log.start_wall > 60.0 * max_minutes)
        if out_of_time or (recipe.patience is not None and wait >= recipe.patience):
            break
    net.load_state_dict(best_state)
    return best_epoch, predict


def _mae(predicted: np.ndarray, target: np.ndarray) -> float:
    """MAE of (n,) or (n, 1) predictions, summed in float64."""
    return mae(target.ravel(), predicted.ravel().astype(np.float64))


def write_pretrained_predictions(path: Path) -> None:
    """The shipped formation-energy network's val/test means (eV/atom) into ``path``."""
    model, _ = load_pretrained("formation_energy")
    data = load_data(None, 0)
    np.savez(path, **{split: model.predict(data[split][0])[:, 0] for split in ("val", "test")})


def greedy_selection(val: np.ndarray, y_val: np.ndarray, rounds: int = 50) -> np.ndarray:
    """Ensemble selection (Caruana et al. 2004, ICML): starting from nothing, add, with
    replacement, the member whose addition most lowers the validation MAE of the mean;
    stop after ``rounds`` additions or when none lowers it. val: (n_members, n) predictions,
    y_val: (n,) targets. Returns (n_members,) weights summing to 1 (times chosen / total)."""
    counts, total = np.zeros(len(val)), np.zeros(val.shape[1])
    best = np.inf
    for _ in range(rounds):
        n = counts.sum() + 1
        scores = np.abs((total + val) / n - y_val).mean(axis=1)
        k = int(scores.argmin())
        if scores[k] >= best:
            break
        best, counts[k], total = scores[k], counts[k] + 1, total + val[k]
    return counts / counts.sum()


def score_ensemble(paths: list[Path]) -> None:
    """Val and test MAE (eV/atom) of each prediction file, of their mean, and of the mean
    weighted by greedy selection on the validation rows (the test rows play no part), with
    percentile-bootstrap 95% intervals over the rows for the two combinations."""
    data = load_data(None, 0)
    predictions = {split: np.array([np.load(path)[split].ravel() for path in paths],
                                   dtype=np.float64) for split in ("val", "test")}
    weights = greedy_selection(predictions["val"], data["val"][1].ravel().astype(np.float64))
    for split, p in predictions.items():
        y = data[split][1].ravel()
        for path, member in zip(paths, p, strict=True):
            print(f"{split} MAE {_mae(member, y):.5f}  {path}")
        for combined, label in ((p.mean(axis=0), f"mean of the {len(paths)}"),
                                (weights @ p, "greedy selection on val, weights "
                                 + " ".join(f"{w:.2f}" for w in weights))):
            # a split's rows are a sample too: a percentile bootstrap over them
            ci = bootstrap_ci(mae, y.astype(np.float64), combined)
            print(f"{split} MAE {ci.value:.5f} [95% CI {ci.low:.5f}–{ci.high:.5f}]  {label}")


def run_forest(csv_path: Path, threads: int) -> None:
    """Random forest (100 trees) on Magpie features: fit on train, score test, one row."""
    train = load_dataset("CritExam__Ef", split="train", progress=False)
    test = load_dataset("CritExam__Ef", split="test", progress=False)
    log = RunLog(csv_path, "sklearn", "rf-magpie-100")
    forest = rf_magpie(100, random_state=0, n_jobs=threads).fit(train["formula"], train["target"])
    test_mae = _mae(forest.predict(test["formula"]), test["target"].to_numpy())
    log.row("final", 0, test_mae=test_mae)
    log.close()


def plot(csv_path: Path, png_path: Path) -> None:
    """Validation MAE vs wall minutes and vs CPU minutes, one line per (engine, recipe)."""
    import pandas as pd

    frame = pd.read_csv(csv_path)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5), sharey=True)
    epochs = frame[frame["phase"] == "epoch"]
    forest = frame[(frame["phase"] == "final") & (frame["engine"] == "sklearn")]
    for ax, column, what in zip(axes, ("wall_s", "cpu_s"), ("wall", "CPU"), strict=True):
        for (engine, recipe), run in epochs.groupby(["engine", "recipe"], sort=False):
            ax.plot(run[column] / 60, run["val_mae"], marker=".", label=f"{engine}: {recipe}")
        for _, row in forest.iterrows():
            ax.axhline(row["test_mae"], color="grey", ls=":",
                       label=f"{row['recipe']} test MAE {row['test_mae']:.4f}")
        ax.axhline(ELEMNET_TEST_MAE, color="k", ls="--",
                   label=f"ElemNet published {ELEMNET_TEST_MAE}")
        ax.set(xlabel=f"{what} time (minutes)", yscale="log")
    axes[0].set(ylabel="validation MAE (eV/atom)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=7)
    fig.suptitle("ElemNet-17 on CritExam__Ef: time to accuracy")
    fig.tight_layout(rect=(0, 0.04 * (len(labels) + 1) / 2, 1, 1))
    fig.savefig(png_path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="stoichnet", choices=sorted(RECIPES))
    parser.add_argument("--engine", default="stoichnet", choices=["stoichnet", "torch"])
    parser.add_argument("--model", default="elemnet", choices=["elemnet", *SET_MODELS])
    parser.add_argument("--checkpoint", type=Path, help="set models: checkpoint file")
    parser.add_argument("--warm-start", type=Path, metavar="CKPT",
                        help="set models: start from the weights of this checkpoint of an "
                        "earlier run (fresh optimizer, the whole schedule again)")
    parser.add_argument("--swa-from", type=int, metavar="N",
                        help="set models: keep the mean of the weights at the ends of epochs "
                        "N, N+1, ... (stochastic weight averaging; 1-based)")
    parser.add_argument("--predictions", type=Path,
                        help="set models: write the kept weights' val/test predictions here")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs (the "
                        "schedule then decays over these)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--optimizer")
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--schedule")
    parser.add_argument("--warmup-fraction", type=float)
    parser.add_argument("--patience", type=int)
    parser.add_argument("--loss", help="set models: the training loss, e.g. laplace_nll "
                        "(Roost's robust loss; early stopping still on the MAE of the means)")
    parser.add_argument("--max-minutes", type=float, help="stop after the first epoch past it")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--subset", type=int, help="train on this many rows (val: a fifth)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", type=Path, default=Path("time_to_accuracy.csv"))
    parser.add_argument("--png", type=Path, default=Path("time_to_accuracy.png"))
    parser.add_argument("--rf", action="store_true", help="run the random forest instead")
    parser.add_argument("--plot-only", action="store_true")
    parser.add_argument("--pretrained-predictions", type=Path, metavar="F.npz",
                        help="write the shipped network's val/test predictions here")
    parser.add_argument("--ensemble", type=Path, nargs="+", metavar="F.npz",
                        help="score these prediction files and their mean")
    args = parser.parse_args()

    if args.pretrained_predictions or args.ensemble:
        with threadpool_limits(args.threads):
            if args.pretrained_predictions:
                write_pretrained_predictions(args.pretrained_predictions)
            if args.ensemble:
                score_ensemble(args.ensemble)
        return
    if args.plot_only:
        plot(args.csv, args.png)
        return
    with threadpool_limits(args.threads):
        if args.rf:
            run_forest(args.csv, args.threads)
        else:
            overrides = {name: value for name in ("epochs", "batch_size", "optimizer",
                                                  "learning_rate", "weight_decay", "schedule",
                                                  "warmup_fraction", "patience", "loss")
                         if (value := getattr(args, name)) is not None}
            recipe = dataclasses.replace(get_recipe(args.recipe), **overrides)
            label = args.recipe + "".join(f" {k}={v}" for k, v in overrides.items())
            if args.subset:
                label += f" subset={args.subset}"
            if args.warm_start:
                label += f" warm-start={args.warm_start.name}"
            if args.swa_from:
                label += f" swa-from={args.swa_from}"
            sets = args.model != "elemnet"
            if sets and (args.engine != "stoichnet" or recipe.dropout):
                parser.error("--model roost/crabnet: stoichnet engine, a recipe without dropout")
            if args.swa_from is not None and (not sets or args.swa_from < 1):
                parser.error("--swa-from N: set models only, N >= 1 (the first epoch averaged)")
            if args.loss and not sets:
                parser.error("--loss: set models only (--model roost or crabnet)")
            if args.warm_start and not sets:
                parser.error("--warm-start continues a set model's run: it needs --model "
                             "roost or crabnet")
            data = load_data(args.subset, args.seed, sets)
            log = RunLog(args.csv, args.engine if not sets else f"stoichnet {args.model}", label)
            if sets:
                epoch, predict = train_set_model(args.model, recipe, data, log, args.seed,
                                                 args.threads, args.max_minutes, args.checkpoint,
                                                 args.warm_start, args.swa_from)
            else:
                train = train_torch if args.engine == "torch" else train_stoichnet
                epoch, predict = train(recipe, data, log, args.seed, args.threads,
                                       args.max_minutes)
            mc = recipe.mc_samples if recipe.inference_dropout == "mc" else None
            modes = {"final": mc}
            if recipe.dropout:  # the dropout trap: every way of predicting, same weights
                modes |= {"final dropout off": None, "final mc 1": 1, "final mc 10": 10}
            for phase, samples in modes.items():
                log.row(phase, epoch, val_mae=_mae(predict(data["val"][0], samples),
                                                   data["val"][1]),
                        test_mae=_mae(predict(data["test"][0], samples), data["test"][1]))
            if args.predictions is not None:
                np.savez(args.predictions, **{split: predict(data[split][0], None)
                                              for split in ("val", "test")})
            log.close()
    plot(args.csv, args.png)


if __name__ == "__main__":
    main()
