"""The ``stoichnet`` command line: thin, parses arguments, calls the layers below,
decides where files go."""

from __future__ import annotations

import importlib
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import click
import pandas as pd

from stoichnet import __version__
from stoichnet.util.signals import graceful_sigint

EXIT_INTERRUPTED = 130


class RegistryChoice(click.Choice):
    """A ``click.Choice`` of the names in a lower layer's registry, never retyped here,
    e.g. ``RegistryChoice("stoichnet.evaluate.study", "KNOBS")``. The registry is
    imported when a command's options are parsed or shown, not when the CLI is, so
    ``stoichnet --help`` and ``--version`` stay fast; ``extra`` names go first."""

    def __init__(self, module: str, name: str, extra: tuple[str, ...] = ()):
        self.registry = (module, name, extra)
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        module, name, extra = self.registry
        return (*extra, *getattr(importlib.import_module(module), name))

    @choices.setter
    def choices(self, value) -> None:  # click.Choice.__init__ assigns; the registry decides
        pass


TASK_CHOICE = RegistryChoice("stoichnet.evaluate.compare", "TASKS", extra=("auto",))
RECIPE_CHOICE = RegistryChoice("stoichnet.models.recipes", "RECIPES")
TRAINABLE = ("elemnet", "roost", "crabnet")  # `train --model` (elemnet-transfer is --init)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="stoichnet")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads of the BLAS matrix products and of the optimizer's update "
                   "(default: all cores). Use 1 on a machine busy with other jobs, where a "
                   "2-thread product waits for its descheduled second thread.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, threads: int | None) -> None:
    """stoichnet: neural networks from first principles for materials properties
    from composition, side by side with a random-forest baseline.

    \b
    Datasets are read from the folder named by STOICHNET_DATA.
    Run `stoichnet COMMAND --help` for a command's options and examples.

    \b
    Examples:
      stoichnet compare --dataset CritExam__Ef --subset 2000 --epochs 20 --out runs/quick
      stoichnet train --dataset CritExam__Ef --out ef.npz
      stoichnet predict ef.npz Fe2O3 NaCl
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if threads is not None:
        from threadpoolctl import threadpool_limits

        from stoichnet.nn.optimizers import thread_limit

        ctx.with_resource(threadpool_limits(limits=threads, user_api="blas"))
        ctx.with_resource(thread_limit(threads))


# ---------------------------------------------------------------- data options
def data_options(func):
    """--dataset or --train/--val/--test, column names, --subset and --seed."""
    options = [
        click.option("--dataset", metavar="NAME",
                     help="Registered dataset, e.g. CritExam__Ef, matbench_expt_is_metal "
                          "(stoichnet.chem.list_datasets()); its train/val/test splits are used, "
                          "or a seeded 70/15/15 split of a single-file set."),
        click.option("--train", "train_path", type=click.Path(exists=True, dir_okay=False),
                     help="Training table (.csv, .tsv, .xlsx, .parquet) instead of --dataset."),
        click.option("--val", "val_path", type=click.Path(exists=True, dir_okay=False),
                     help="Validation table for early stopping (default: a seeded 10% of --train)."),
        click.option("--test", "test_path", type=click.Path(exists=True, dir_okay=False),
                     help="Test table."),
        click.option("--formula-col", default="formula", show_default=True,
                     help="Formula column of the tables."),
        click.option("--target-col", default="target", show_default=True,
                     help="Target column of the tables."),
        click.option("--duplicates", type=RegistryChoice("stoichnet.chem.tables", "DUPLICATES"),
                     help="Rows of one split with the same composition: raise (default for "
                          "--train tables), mean, first or keep (a dataset's default: keep and "
                          "warn)."),
        click.option("--subset", type=click.IntRange(min=2), metavar="N",
                     help="Use a seeded random N rows of each split (quick runs)."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Seed of splits, subsets, weights, shuffling and bootstrap."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def executor_options(func):
    """--jobs N and --scheduler local|tcp://HOST:PORT: where a command's independent
    trainings run (``stoichnet.evaluate.executor.run_jobs``'s ``n_jobs`` and ``scheduler``;
    the command receives ``jobs`` and ``scheduler``)."""

    def check(ctx, param, value):
        from stoichnet.evaluate.executor import check_scheduler

        try:
            return check_scheduler(value)
        except ValueError as err:
            raise click.BadParameter(str(err)) from None

    func = click.option(
        "--scheduler", metavar="local|tcp://HOST:PORT", callback=check,
        help="Run the trainings on Dask: 'local' starts a LocalCluster of --jobs worker "
             "processes; tcp://HOST:PORT sends them to a running scheduler (`dask scheduler`, "
             "and `dask worker tcp://HOST:PORT` on each host). Default: this machine.")(func)
    return click.option(
        "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
        help="Trainings run at once: worker processes on this machine, or the workers of "
             "--scheduler local (1: one after the other in this process).")(func)


recalibration_option = click.option(
    "--recalibration", type=click.Choice(["scale", "isotonic"]), default="isotonic",
    show_default=True,
    help="How sigma is recalibrated on the validation rows: a scale factor (the Gaussian "
         "NLL's closed form; off when the errors are heavy-tailed, as a few members' spread "
         "is) or an isotonic map of the interval levels.")
"""--recalibration, as `compare` and `train` take it."""


def load_split(opts: dict, need_test: bool = True, task: str = "auto"):
    """The ``stoichnet.evaluate.data.Split`` named by the data options; ``task`` ("auto",
    "regression" or "classification") guards --duplicates mean against class labels.
    Options that contradict each other are usage errors."""
    from stoichnet.evaluate.data import LabelAveragingError
    from stoichnet.evaluate.data import load_split as load

    if (opts["dataset"] is None) == (opts["train_path"] is None):
        raise click.UsageError("give either --dataset NAME or --train FILE (not both)")
    if opts["dataset"] is not None and (opts["val_path"] or opts["test_path"]):
        raise click.UsageError("--val/--test go with --train, not with --dataset")
    if opts["train_path"] is not None and need_test and not opts["test_path"]:
        raise click.UsageError("--train needs --test (the rows the models are scored on)")
    try:
        return load(opts["dataset"], train=opts["train_path"], val=opts["val_path"],
                    test=opts["test_path"], formula_col=opts["formula_col"],
                    target_col=opts["target_col"], duplicates=opts["duplicates"],
                    subset=opts["subset"], seed=opts["seed"], need_test=need_test, task=task)
    except LabelAveragingError as err:
        raise click.UsageError(
            f"--duplicates mean would average the class labels of {err.path} into "
            "fractions: use first, raise or keep (compare and train also take "
            "--task regression, if the 0/1 target is a quantity)") from None


def announce_stop(stop) -> Callable[[], None]:
    """What the first Ctrl-C does (under ``graceful_sigint``): ``stop.request()`` (the
    network stops after its current batch), and say so."""

    def request() -> None:
        stop.request()
        click.echo("\nCtrl-C: stopping after the current batch (Ctrl-C again to abort now)",
                   err=True)

    return request


def echo_notes(split) -> None:
    """The split's row counts and notes, on stderr."""
    click.echo(split.describe(), err=True)
    for note in split.notes:
        click.echo(f"note: {note}", err=True)


def parse_models(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [m.strip() for m in text.split(",") if m.strip()]


def checkpoint_options(what: str):
    """--checkpoint-dir DIR and --resume; ``what`` says which checkpoints DIR holds."""

    def decorate(func):
        func = click.option(
            "--resume", is_flag=True,
            help="Continue the run saved in --checkpoint-dir (same data and options); the "
                 "result is bit-identical to an uninterrupted run.")(func)
        return click.option(
            "--checkpoint-dir", type=click.Path(file_okay=False), metavar="DIR",
            help=f"Write {what} after every epoch and on Ctrl-C (DIR is created).")(func)

    return decorate


def checkpoint_folder(checkpoint_dir, resume: bool, overwrite: bool,
                      files: str = "*.ckpt") -> Path | None:
    """The --checkpoint-dir folder (created), checked against --resume/--overwrite:
    resuming needs checkpoints matching ``files`` there; starting afresh over them needs
    --overwrite."""
    if checkpoint_dir is None:
        if resume:
            raise click.UsageError("--resume needs --checkpoint-dir DIR, the folder holding "
                                   "the checkpoint")
        return None
    folder = Path(checkpoint_dir)
    earlier = sorted(folder.glob(files)) if folder.is_dir() else []
    if resume and not earlier:
        raise click.UsageError(f"--resume: there is no checkpoint {folder / files} to continue")
    if earlier and not (resume or overwrite):
        raise click.UsageError(f"{earlier[0]} holds an earlier run: pass --resume to continue "
                               "it or --overwrite to start again")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def exit_interrupted(err) -> None:
    """After ``TrainingInterrupted``: say where the checkpoint is and how to resume; exit 130."""
    click.echo(f"\nInterrupted after {err.epoch} full epoch(s): {err.checkpoint} holds the run so "
               "far. To continue, run the same command with --resume.", err=True)
    raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


# ---------------------------------------------------------------- compare
@cli.command()
@data_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Output folder (default: compare-<dataset or train file name>).")
@click.option("--models", metavar="LIST",
              help="Comma-separated models (default regression: elemnet,rf,ridge,mean; "
                   "classification: elemnet,rf,majority); networks: elemnet, "
                   "elemnet-transfer, roost, crabnet.")
@click.option("--task", type=TASK_CHOICE,
              default="auto", show_default=True,
              help="auto: classification for a 0/1 or text target.")
@click.option("--epochs", type=click.IntRange(min=1), help="Maximum epochs of the network "
              "(default: the recipe's).")
@click.option("--recipe", type=RECIPE_CHOICE,
              help="Network training recipe (default: stoichnet); see "
              "stoichnet.models.recipes.")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True),
              help="Cap on the network's training time; best weights so far are kept.")
@click.option("--jobs", type=click.IntRange(min=-1), default=-1, show_default=True,
              help="Processes of the random forest (-1: all cores).")
@click.option("--drop-unsupported", is_flag=True,
              help="Drop (and report) rows whose formulas have elements outside ElemNet's "
                   "86 inputs, from every model's data (default: refuse; Roost and "
                   "CrabNet take every element).")
@click.option("--overwrite", is_flag=True, help="Write into a non-empty output folder.")
@checkpoint_options("DIR/<model>.ckpt for each network")
@recalibration_option
def compare(out_dir, models, task, epochs, recipe, max_minutes, jobs, drop_unsupported, overwrite,
            checkpoint_dir, resume, recalibration="isotonic", **opts):
    """Train the network and the baselines on one split and compare them on the test rows.

    Prints test MAE with a 95% bootstrap interval, RMSE, R2, fit and predict seconds
    (accuracy, ROC-AUC and F1 for classification) and one sentence on how much the network
    improves on the random forest. Writes DIR/metrics.json, DIR/predictions.csv and PNG
    figures (parity, residuals, learning curves, periodic-table MAE map; ROC and confusion
    matrices for classification).

    \b
    Examples:
      stoichnet compare --dataset CritExam__Ef --out runs/ef
      stoichnet compare --dataset CritExam__Ef --subset 2000 --epochs 20 --out runs/quick
      stoichnet compare --train a.csv --val v.csv --test b.csv --target-col Ef --out runs/mine
      stoichnet compare --dataset matbench_expt_is_metal --models elemnet,rf --out runs/metal
      stoichnet compare --dataset CritExam__Ef --models roost,crabnet,elemnet,rf --out runs/sets
      stoichnet compare --dataset CritExam__Ef --out runs/ef --checkpoint-dir runs/ef-ckpt
      stoichnet compare --dataset CritExam__Ef --out runs/ef --checkpoint-dir runs/ef-ckpt --resume
    """
    from stoichnet.evaluate.compare import StopRequest, write_comparison
    from stoichnet.evaluate.compare import compare as run_compare
    from stoichnet.nn import TrainingInterrupted
    from stoichnet.util.files import check_output_dir

    out = Path(out_dir or f"compare-{opts['dataset'] or Path(opts['train_path'] or '').stem}")
    check_output_dir(out, overwrite)
    folder = checkpoint_folder(checkpoint_dir, resume, overwrite)
    split = load_split(opts, task=task)
    echo_notes(split)
    stop = StopRequest()
    with graceful_sigint(announce_stop(stop)):
        try:
            result = run_compare(
                split.train, split.val, split.test, models=parse_models(models), task=task,
                epochs=epochs, recipe=recipe, seed=opts["seed"], max_minutes=max_minutes,
                unit=split.unit, n_jobs=jobs, stop=stop, checkpoint_dir=folder, resume=resume,
                drop_unsupported=drop_unsupported, recalibration=recalibration,
            )
        except TrainingInterrupted as err:
            exit_interrupted(err)
    if not result.runs:
        click.echo("Interrupted before any model finished; nothing written.", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED)
    paths = write_comparison(result, out, overwrite=overwrite)
    click.echo(result.table())
    sentence = result.verdict()
    if sentence:
        click.echo(sentence)
    for name, run in result.runs.items():
        if run.learning is not None and sentence is None:  # no verdict says it for us
            click.echo(f"{name}: {run.learning}")
        if run.stopped_by == "budget":
            click.echo(f"{name}: the --max-minutes budget stopped training after {run.epochs} "
                       "epochs; the best weights so far were kept.")
    calibration = result.calibration_table()
    if calibration:
        click.echo("\nUncertainty calibration on the test rows (recalibrated on the validation "
                   "rows; a calibrated model covers 68% and 95%, area 0):")
        click.echo(calibration)
    click.echo(f"Wrote {', '.join(p.name for p in paths)} to {out}/")
    if result.interrupted:
        skipped = f"; not trained: {', '.join(result.skipped)}" if result.skipped else ""
        click.echo(
            f"Interrupted: results so far are in {out}/ (metrics.json says interrupted){skipped}. "
            "To finish, run the same command again with --overwrite (with --checkpoint-dir DIR "
            "an interrupted network can be resumed instead).", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED)


# ---------------------------------------------------------------- studies
STUDY_FILES = ("study.csv", "val_mae_curves.png", "test_mae_vs_value.png",
               "layer_statistics.png")


def run_study_command(knob, values, out_dir, epochs, recipe, max_minutes, jobs, scheduler,
                      overwrite, checkpoint_dir, resume, opts):
    from stoichnet.evaluate.compare import detect_task
    from stoichnet.evaluate.data import study_data
    from stoichnet.evaluate.study import NetworkConfig, parse_values, run_study
    from stoichnet.nn import TrainingInterrupted
    from stoichnet.util.files import atomic_dir

    values = parse_values(knob, values)
    folder = checkpoint_folder(checkpoint_dir, resume, overwrite)
    split = load_split(opts)
    out = Path(out_dir or f"study-{knob}-{split.name}")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output folder {str(out)!r} is a file")
    finished = [n for n in STUDY_FILES if (out / n).exists()]
    if finished and not overwrite:
        raise FileExistsError(f"{out}/ already holds {', '.join(finished)}; pass --overwrite to "
                              "replace them (finished values are reused from its cache/)")
    echo_notes(split)
    if split.test is None:
        raise click.UsageError("a study needs test rows")
    if detect_task(split.train["target"]) == "classification":
        raise click.UsageError("studies are for regression targets; this one holds class labels")
    base = NetworkConfig(recipe=recipe or NetworkConfig.recipe, epochs=epochs, seed=opts["seed"],
                         max_minutes=max_minutes)
    cache = out / "cache"
    start = time.perf_counter()
    try:
        result = run_study(knob, values, study_data(split), base=base, cache_dir=cache,
                           jobs=jobs, scheduler=scheduler, unit=split.unit, checkpoint_dir=folder,
                           resume=resume)
    except KeyboardInterrupt as err:  # TrainingInterrupted too, from the engine's own handler
        if folder is not None and isinstance(err, TrainingInterrupted):
            exit_interrupted(err)
        resume_hint = "" if folder is None else (
            f" (add --resume to continue unfinished networks from their checkpoints in {folder}/)")
        click.echo(f"\nInterrupted: finished values are kept in {cache}/; run the same command "
                   f"again to compute only the missing ones{resume_hint}.", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    table = result.table()
    with atomic_dir(out, overwrite=True) as tmp:
        table.to_csv(tmp / STUDY_FILES[0], index=False)
        result.curves_figure().savefig(tmp / STUDY_FILES[1], dpi=110)
        result.score_figure().savefig(tmp / STUDY_FILES[2], dpi=110)
        layers = result.layers_figure()  # None if every value came from an older cache
        if layers is not None:
            layers.savefig(tmp / STUDY_FILES[3], dpi=110)
    shown = table.drop(columns=["rf_test_mae"]).to_string(index=False, float_format="{:.4g}".format)
    click.echo(shown)
    unit = f" {split.unit}" if split.unit else ""
    n_cached = int(table["cached"].sum())
    click.echo(f"random forest (Magpie) test MAE: {result.rf_test_mae:.4g}{unit}")
    click.echo(f"{len(table) - n_cached} value(s) trained, {n_cached} reused from {cache}/ "
               f"in {time.perf_counter() - start:.0f} s")
    written = STUDY_FILES if layers is not None else STUDY_FILES[:3]
    click.echo(f"Wrote {', '.join(written)} to {out}/")


def study_options(func):
    options = [
        click.option("--out", "out_dir", type=click.Path(file_okay=False), metavar="DIR",
                     help="Output folder; its cache/ keeps every finished value."),
        click.option("--epochs", type=click.IntRange(min=1),
                     help="Maximum epochs per network (default: the recipe's)."),
        click.option("--recipe", type=RECIPE_CHOICE,
                     help="Base training recipe (default: stoichnet)."),
        click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True),
                     help="Cap on each network's training time."),
        click.option("--overwrite", is_flag=True, help="Replace the study's CSV and figures."),
    ]
    for option in reversed([*options, executor_options]):
        func = option(func)
    return checkpoint_options("a checkpoint of each network (named like its cache file)")(func)


@cli.command()
@click.option("--vary", "knob", required=True,
              type=RegistryChoice("stoichnet.evaluate.study", "KNOBS"),
              help="The knob to vary.")
@click.option("--values", required=True, metavar="LIST",
              help="Comma-separated values of the knob.")
@data_options
@study_options
def study(knob, values, out_dir, epochs, recipe, max_minutes, jobs, scheduler, overwrite,
          checkpoint_dir, resume, **opts):
    """Train one network per value of one knob on the same split.

    Everything but the knob follows the recipe. Writes DIR/study.csv (test MAE, best
    validation MAE, epochs, wall seconds per value), DIR/val_mae_curves.png,
    DIR/test_mae_vs_value.png (with the random forest's MAE as a line) and
    DIR/layer_statistics.png: each layer's gradient norm (first and last epoch), weight
    norm and dead units against depth, one line per value (--vary activation shows why
    sigmoid learns slowly through 17 layers: its gradients vanish). Finished values
    are cached in DIR/cache/ and not recomputed when the study is run again. The values
    train at once in --jobs local processes or on a Dask cluster (--scheduler), with the
    same results as one after the other.

    \b
    Examples:
      stoichnet study --vary learning_rate --values 1e-4,3e-4,1e-3,3e-3 --dataset CritExam__Ef
      stoichnet study --vary optimizer --values sgd,rmsprop,adagrad,adadelta,adam,adamax,nadam \\
          --dataset CritExam__Ef --subset 5000 --epochs 30 --jobs 2
      stoichnet study --vary activation --values relu,elu,tanh --train a.csv --test b.csv
      stoichnet study --vary batch_size --values 32,64,128 --dataset CritExam__Ef \\
          --jobs 2 --scheduler local
    """
    run_study_command(knob, values, out_dir, epochs, recipe, max_minutes, jobs, scheduler,
                      overwrite, checkpoint_dir, resume, opts)


@cli.command("depth-study")
@click.option("--depths", default="1,2,3,5,8,12,17", show_default=True, metavar="LIST",
              help="Comma-separated numbers of Dense layers.")
@data_options
@study_options
def depth_study(depths, out_dir, epochs, recipe, max_minutes, jobs, scheduler, overwrite,
                checkpoint_dir, resume, **opts):
    """Test MAE against network depth, the ElemNet paper's Figure 2.

    A depth-d network has d Dense layers: the 16 hidden widths of ElemNet-17
    (1024x4, 512x3, 256x3, 128x3, 64x2, 32) sampled at d - 1 evenly spaced positions, then
    one output unit (stoichnet.models.elemnet.depth_arch). Same files as `study`.

    \b
    Examples:
      stoichnet depth-study --dataset CritExam__Ef --subset 5000 --epochs 30 --jobs 2
      stoichnet depth-study --depths 2,4,8,17 --train a.csv --test b.csv --out runs/depth
      stoichnet depth-study --dataset CritExam__Ef --out runs/depth --scheduler tcp://head:8786
      stoichnet depth-study --dataset CritExam__Ef --out runs/depth --checkpoint-dir runs/dckpt
      stoichnet depth-study --dataset CritExam__Ef --out runs/depth --checkpoint-dir runs/dckpt \\
          --resume
    """
    run_study_command("depth", depths, out_dir, epochs, recipe, max_minutes, jobs, scheduler,
                      overwrite, checkpoint_dir, resume, opts)


# ---------------------------------------------------------------- train / predict
@cli.command()
@data_options
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              metavar="FILE", help="Model file to write (e.g. model.npz); its model card goes "
                                   "next to it as FILE with suffix .json.")
@click.option("--model", "model_name", type=click.Choice(TRAINABLE), default="elemnet",
              show_default=True, help="The network: ElemNet-17, Roost or CrabNet.")
@click.option("--task", type=TASK_CHOICE,
              default="auto", show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), help="Maximum epochs (default: recipe's).")
@click.option("--recipe", type=RECIPE_CHOICE,
              help="Training recipe (default: stoichnet).")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True),
              help="Cap on training time; best weights so far are kept.")
@click.option("--overwrite", is_flag=True, help="Replace existing model files.")
@click.option("--init", metavar="pretrained|NAME|MODEL.npz",
              help="Transfer learning: start from a trained network's hidden layers under a "
                   "new output layer: 'pretrained' (the formation-energy network shipped with "
                   "stoichnet), a shipped network's name, or a model file of `stoichnet "
                   "train`.")
@click.option("--freeze", type=click.IntRange(min=0), default=0, show_default=True,
              metavar="N", help="With --init: keep the first N hidden layers as they are.")
@click.option("--init-lr-scale", type=click.FloatRange(min=0, min_open=True), default=0.1,
              show_default=True,
              help="With --init: learning-rate factor of the copied layers that train (the "
                   "new output layer learns at the recipe's rate).")
@checkpoint_options("DIR/train.ckpt")
@click.option("--ensemble", "ensemble", type=int, metavar="K",
              help="Train K >= 2 networks from different seeds (a deep ensemble; K times the "
                   "training time) and save them in one model file; predictions get a sigma. "
                   "With --jobs or --scheduler the K train at once, with the same result.")
@click.option("--bootstrap", is_flag=True,
              help="With --ensemble: train each member on its own resample of the training "
                   "rows, drawn with replacement (bagging): members that differ more.")
@executor_options
@click.option("--loss", type=click.Choice(["mae", "mse", "huber", "gaussian_nll",
                                           "laplace_nll"]),
              help="Training loss (default: the recipe's). gaussian_nll / laplace_nll give "
                   "the network an aleatoric head: it predicts a sigma per formula.")
@recalibration_option
def train(out_path, model_name, task, epochs, recipe, max_minutes, overwrite, init, freeze,
          init_lr_scale, checkpoint_dir, resume, ensemble=None, bootstrap=False, loss=None,
          recalibration="isotonic", jobs=1, scheduler=None, **opts):
    """Train a network (ElemNet by default; Roost, CrabNet) and save it for `stoichnet predict`.

    Early stopping watches the validation rows; the test rows, when given, are scored.
    The default recipe sizes batch and epochs to the training rows (at least 3,000
    optimizer steps) and standardises the targets. A network whose validation error is
    not clearly below the mean predictor's (or, for classes, whose validation ROC-AUC is
    below 0.6) is reported as not having learned, with the likely cause.

    A regression network with an uncertainty (--ensemble, --loss gaussian_nll /
    laplace_nll, or Monte-Carlo dropout) gets its sigma recalibrated on the validation rows
    (an isotonic map by default, stored in the model card, the raw and recalibrated test
    coverage printed); the card also stores the training data's domain for `predict`'s warning.

    \b
    Examples:
      stoichnet train --dataset CritExam__Ef --out ef.npz
      stoichnet train --dataset CritExam__Ef --model roost --out ef-roost.npz
      stoichnet train --train mine.csv --target-col band_gap --epochs 50 --out gap.npz
      stoichnet train --dataset CritExam__Ef --out ef.npz --checkpoint-dir ckpt
      stoichnet train --dataset CritExam__Ef --out ef.npz --checkpoint-dir ckpt --resume
      stoichnet train --dataset aflow__ael_bulk_modulus_vrh --init pretrained --out bulk.npz
      stoichnet train --dataset matbench_glass --init pretrained --freeze 8 --out glass.npz
      stoichnet train --dataset CritExam__Ef --out ef5.npz --ensemble 5
      stoichnet train --dataset CritExam__Ef --out ef5.npz --ensemble 5 --jobs 2
      stoichnet train --dataset CritExam__Ef --out ef5b.npz --ensemble 5 --bootstrap
      stoichnet train --dataset CritExam__Ef --out ef-nll.npz --loss gaussian_nll
    """
    from stoichnet.evaluate.compare import NETWORKS, StopRequest, as_labels, detect_task
    from stoichnet.evaluate.learning import learning_check
    from stoichnet.evaluate.metrics import mae, roc_auc
    from stoichnet.evaluate.model_card import card_path, save_network, uncertainty_card
    from stoichnet.nn import TrainingInterrupted
    from stoichnet.util.files import check_output_file

    if ensemble is not None and ensemble < 2:
        raise click.BadParameter(f"an ensemble needs at least 2 members, got {ensemble}",
                                 param_hint="--ensemble")
    if ensemble is not None and checkpoint_dir is not None:
        raise click.UsageError("--ensemble trains several networks; it cannot be combined "
                               "with --checkpoint-dir")
    parallel = jobs > 1 or scheduler is not None
    if bootstrap and ensemble is None:
        raise click.UsageError("--bootstrap resamples the rows of each ensemble member: it "
                               "needs --ensemble K")
    if parallel and ensemble is None:
        raise click.UsageError("--jobs and --scheduler train the members of an ensemble at "
                               "once: they need --ensemble K")
    check_output_file(out_path, overwrite)
    check_output_file(card_path(out_path), overwrite)
    if init is None and freeze:
        raise click.UsageError("--freeze N freezes pretrained layers: it needs --init")
    if init is not None and model_name != "elemnet":
        raise click.UsageError(f"--init starts from a trained ElemNet network; --model "
                               f"{model_name} has no pretrained network to start from")
    folder = checkpoint_folder(checkpoint_dir, resume, overwrite, files="train.ckpt")
    checkpoint = None if folder is None else folder / "train.ckpt"
    split = load_split(opts, need_test=False, task=task)
    echo_notes(split)
    task = detect_task(split.train["target"]) if task == "auto" else task
    if task == "classification":
        split.train, split.val, split.test = (
            None if t is None else as_labels(t) for t in (split.train, split.val, split.test))
    if task == "classification" and (ensemble or loss):
        raise click.UsageError("--ensemble and --loss are for regression targets")
    transfer = ({"init": init, "freeze": freeze, "init_lr_scale": init_lr_scale}
                if model_name == "elemnet" else {})
    net = NETWORKS[task][model_name](recipe=recipe, epochs=epochs, max_minutes=max_minutes,
                                     random_state=opts["seed"], verbose=1, loss=loss,
                                     **transfer)
    if init is not None:  # a bad --init or --freeze is refused before any training
        from stoichnet.models import elemnet, load_init, transfer_weights

        source, what = load_init(init)
        transfer_weights(source, elemnet(), freeze, init_lr_scale, what)
    if ensemble:
        from stoichnet.models import DeepEnsembleRegressor
        net = DeepEnsembleRegressor(net, n_members=ensemble, random_state=opts["seed"],
                                    bootstrap=bootstrap)
    stop = StopRequest()
    fit_data = (split.train["formula"], split.train["target"].to_numpy(),
                (split.val["formula"], split.val["target"].to_numpy()))
    if parallel:  # Ctrl-C cancels every member (run_jobs) and nothing is written
        from stoichnet.evaluate.ensemble import fit_ensemble

        fit_ensemble(net, *fit_data, jobs=jobs, scheduler=scheduler, progress=True)
    else:
        with graceful_sigint(announce_stop(stop)):
            stop.current, stop.checkpointed = net, checkpoint is not None
            try:
                net.fit(*fit_data[:2], validation_data=fit_data[2], checkpoint=checkpoint,
                        resume=checkpoint if resume else None)
            except TrainingInterrupted as err:
                exit_interrupted(err)
    members = getattr(net, "estimators_", [net])

    def per_member(attr):  # one value, or one per ensemble member
        values = [getattr(member, attr) for member in members]
        return values[0] if len(values) == 1 else values

    failure = learning_check(members[0], split.val["formula"], split.val["target"].to_numpy(),
                             split.train["target"].to_numpy(), unit=split.unit)
    info = {"data": split.describe(), "unit": split.unit,
            "epochs_trained": per_member("n_epochs_"), "steps_trained": per_member("n_steps_"),
            "stopped_by_budget": per_member("stopped_by_budget_"),
            "interrupted": stop.requested,
            "learning_check": None if failure is None else str(failure)}
    if ensemble:
        info["ensemble"] = {"members": len(members), "bootstrap": bootstrap}
    if task == "regression":
        info.update(uncertainty_card(net, split, opts["seed"], recalibration))
    if split.test is not None:
        y = split.test["target"].to_numpy()
        if task == "regression":
            info["test_mae"] = mae(y, net.predict(split.test["formula"]))
        else:
            info["test_roc_auc"] = roc_auc(y, net.predict_proba(split.test["formula"]),
                                           classes=net.classes_)
    save_network(net, out_path, info, overwrite=overwrite)
    scores = ", ".join(f"{k} {v:.4g}" for k, v in info.items() if k.startswith("test_"))
    if scores and failure is not None:
        scores += " (no result: the network did not learn)"
    steps = sum(m.n_steps_ for m in members)
    trained = (f"{members[0].n_epochs_} epochs ({steps} steps)" if len(members) == 1
               else f"{len(members)} networks ({steps} steps in all)")
    click.echo(f"Trained {trained}{'; ' + scores if scores else ''}. Wrote {out_path} and "
               f"{card_path(out_path)}")
    for stage, report in (info.get("calibration_test") or {}).items():
        click.echo(f"Test rows inside the {stage} intervals: 68%: {report['coverage 68%']:.1%}, "
                   f"95%: {report['coverage 95%']:.1%} (miscalibration area "
                   f"{report['miscalibration area']:.3f})")
    if failure is not None:
        click.echo(f"Warning: {failure}.")
    if stop.requested:
        click.echo("Interrupted: the model holds the best weights reached so far. To train in "
                   "full, run the same command again with --overwrite.", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED)


def table_suffix(output_path) -> str:
    """".csv" or ".parquet", the --output file's kind; anything else is a usage error."""
    suffix = Path(output_path).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise click.BadParameter(f"{output_path!r} must end in .csv or .parquet",
                                 param_hint="--output")
    return suffix


@cli.command()
@click.argument("args", nargs=-1, metavar="[MODEL] [FORMULA]...")
@click.option("--pretrained", "pretrained_name", metavar="NAME",
              type=RegistryChoice("stoichnet.models", "PRETRAINED"),
              help="A network shipped with stoichnet (default without MODEL: "
                   "formation_energy).")
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False),
              help="Table of formulas (.csv, .tsv, .xlsx, .parquet) instead of arguments.")
@click.option("--formula-col", default="formula", show_default=True)
@click.option("--output", "output_path", type=click.Path(dir_okay=False),
              help="Write predictions here (.csv or .parquet) instead of printing them.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --output file.")
@click.option("--uncertainty", "uncertainty", is_flag=True, default=None,
              help="Require a sigma per prediction (an error for a model without one); a "
                   "model with one gives it anyway.")
def predict(args, pretrained_name, input_path, formula_col, output_path, overwrite,
            uncertainty=None):
    """Predict with a model written by `stoichnet train`, or with a network shipped with
    stoichnet (without MODEL: the formation-energy network, in eV/atom).

    MODEL is the first argument when it ends in .npz or names a file; the other
    arguments are formulas.

    A formula that cannot be predicted (unparseable, or an element the network was not
    trained on) is reported with its row; the others are still predicted. The output's
    `row` column is the input row (CSV: the header is row 1) or argument position (from 1).
    Exits 1 only when no formula could be predicted.

    A model with an uncertainty (trained with --ensemble or --loss gaussian_nll) prints
    `value ± sigma` (sigma recalibrated on its validation rows) and writes the columns
    sigma, low 95% and high 95%. A formula outside what the model has seen (an element
    absent from its training data, or a composition farther from every training
    composition than any validation row) is flagged, with the reason, in the `domain`
    column and on stderr.

    \b
    Examples:
      stoichnet predict Fe2O3 NaCl
      stoichnet predict ef.npz Fe2O3 NaCl
      stoichnet predict ef.npz --input formulas.csv --output predictions.csv
    """
    from stoichnet.chem.tables import read_table
    from stoichnet.evaluate.model_card import load_network
    from stoichnet.evaluate.model_card import predict_formulas as run_predict
    from stoichnet.models import DEFAULT_PRETRAINED, load_pretrained
    from stoichnet.util.files import atomic_file, check_output_file

    model_path, formulas = None, args
    if args and (args[0].lower().endswith(".npz") or Path(args[0]).is_file()):
        model_path, formulas = args[0], args[1:]
        if not Path(model_path).is_file():
            raise click.BadParameter(f"no model file {model_path!r}", param_hint="MODEL")
        if pretrained_name:
            raise click.UsageError(f"give a MODEL file ({model_path}) or --pretrained, "
                                   "not both")
    if bool(formulas) == bool(input_path):
        raise click.UsageError("give formulas as arguments or --input FILE (one of them)")
    if output_path:
        check_output_file(output_path, overwrite)
    if model_path is None:
        model, info = load_pretrained(pretrained_name or DEFAULT_PRETRAINED)
        click.echo(f"Using stoichnet's pretrained network {info['name']!r}: "
                   f"{info['property']}, test MAE {info['scores']['test_mae_float16']:.3g} "
                   f"{info['unit']} (model card: stoichnet.models.pretrained("
                   f"{info['name']!r}).card_)", err=True)
    else:
        model, info = load_network(model_path)
    errors: dict = {}
    if input_path:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table, report = read_table(input_path, formula_col, None, errors="drop",
                                       duplicates="keep", return_report=True)
        for problem in report.problems:
            errors[problem.row] = f"{problem.value!r}: {problem.problem.splitlines()[0]}"
        for row in report.blank_rows:
            errors[row] = "blank row"
        rows, values = table.index.to_list(), table["formula"].to_list()
    else:
        rows, values = list(range(1, len(formulas) + 1)), list(formulas)
    try:
        frame, failed = run_predict(model, info, values, uncertainty=uncertainty)
    except ValueError as err:
        raise click.UsageError(f"{model_path or info['name']}: {err}") from None
    errors.update({rows[i]: f"{values[i]!r}: {why}" for i, why in failed.items()})
    frame.insert(0, "row", [rows[i] for i in frame.pop("position")])
    for row in sorted(errors, key=str):
        click.echo(f"row {row}: {errors[row]}", err=True)
    outside = (frame[frame["domain"] != ""] if "domain" in frame
               else frame.iloc[:0].assign(domain=[]))  # a card without a domain flags nothing
    for row, formula, why in zip(outside["row"], outside["formula"], outside["domain"],
                                 strict=True):
        click.echo(f"row {row}: warning: {formula!r} lies outside the training domain: {why}",
                   err=True)
    if frame.empty:  # say so, instead of an empty table or file
        click.echo(f"{len(errors)} formula(s) could not be predicted, 0 were. Nothing to "
                   f"{'write' if output_path else 'show'}.", err=True)
        raise click.exceptions.Exit(1)
    if output_path:
        suffix = table_suffix(output_path)
        with atomic_file(output_path, overwrite) as tmp:
            frame.to_csv(tmp, index=False) if suffix == ".csv" else frame.to_parquet(tmp)
        click.echo(f"Wrote {len(frame)} prediction(s) to {output_path}", err=True)
    else:
        unit = f" ({info['unit']})" if info.get("unit") else ""
        shown = frame.drop(columns="row")
        if "domain" in shown and outside.empty:  # every formula inside: nothing to flag
            shown = shown.drop(columns="domain")
        if "sigma" in shown:  # value ± sigma, the interval bounds stay in --output files
            shown.insert(1, "prediction", [f"{v:.4g} ± {s:.2g}" for v, s in
                                           zip(shown.pop("prediction"), shown.pop("sigma"),
                                               strict=True)])
            shown = shown.drop(columns=[c for c in shown if c.startswith(("low ", "high "))])
        click.echo(shown.rename(columns={"prediction": f"prediction{unit}"})
                   .to_string(index=False, float_format="{:.4g}".format))
    if errors:
        click.echo(f"{len(errors)} formula(s) could not be predicted, {len(frame)} were.",
                   err=True)


# ---------------------------------------------------------------- inspect
@cli.command("inspect")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.option("--dataset", metavar="NAME",
              help="Registered dataset: its test rows (those `train --dataset NAME` with the "
                   "same --seed held out).")
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False),
              help="Table of formulas and targets (.csv, .tsv, .xlsx, .parquet) instead: all "
                   "its rows.")
@click.option("--formula-col", default="formula", show_default=True)
@click.option("--target-col", default="target", show_default=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Output folder.")
@click.option("--sample", type=click.IntRange(min=2), default=5000, show_default=True,
              metavar="N", help="Formulas drawn at random (seeded) when there are more.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the sample, the probes' folds, the projections and the "
                   "dataset's split.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="Folds of the linear probes' cross-validation.")
@click.option("--projection", type=RegistryChoice("stoichnet.evaluate.inspect", "PROJECTIONS"),
              default="pca", show_default=True,
              help="2-D projection of each layer; umap needs `pip install umap-learn`.")
@click.option("--element-layer", metavar="LAYER",
              help="Layer of the element map, e.g. dense_1 (default: the first).")
@click.option("--overwrite", is_flag=True, help="Write into a non-empty output folder.")
def inspect_command(model_path, dataset, data_path, formula_col, target_col, out_dir, sample,
                    seed, folds, projection, element_layer, overwrite):
    """Look inside a network written by `stoichnet train`: does each layer build up an
    explainable representation?

    On a seeded sample of formulas, for the input and every layer: a 2-D projection of its
    activations coloured by the target and by chemical labels, the cross-validated R2 of
    linear (ridge) probes to the target and to physical descriptors (mean
    electronegativity, mean atomic number, ...), and its dead units (0 on every formula);
    and the elements as the network sees them: each pure element's activations, and how
    often an element's nearest neighbour there is in its periodic-table group. Writes
    DIR/inspect.json, DIR/inspect.csv (layer, width, dead units, R2 per quantity),
    DIR/probes.png, DIR/elements.png and DIR/projections_{target,anion_group,oxide}.png.

    \b
    Examples:
      stoichnet inspect ef.npz --dataset CritExam__Ef --out runs/ef-inspect
      stoichnet inspect gap.npz --data held_out.csv --target-col band_gap --out runs/gap
      stoichnet inspect ef.npz --dataset CritExam__Ef --element-layer dense_3 --out runs/el
    """
    from stoichnet.evaluate.cv import load_rows as load
    from stoichnet.evaluate.data import load_split as load_dataset_split
    from stoichnet.evaluate.inspect import inspect_network, write_inspection
    from stoichnet.evaluate.model_card import load_network
    from stoichnet.util.files import check_output_dir

    if (dataset is None) == (data_path is None):
        raise click.UsageError("give either --dataset NAME or --data FILE (not both)")
    out = check_output_dir(out_dir, overwrite)
    model, info = load_network(model_path)
    if dataset is not None:
        split = load_dataset_split(dataset, seed=seed)
        rows, name, unit = split.test, dataset, split.unit
        where = f"{dataset}: its {len(rows):,} test rows"
    else:
        table = load(path=data_path, formula_col=formula_col, target_col=target_col,
                     duplicates="keep")
        rows, name, unit = table.frame, target_col, info.get("unit") or ""
        where = f"{data_path}: {len(rows):,} rows"
    try:
        result = inspect_network(model, rows["formula"].tolist(), rows["target"].to_numpy(),
                                 sample=sample, seed=seed, folds=folds, projection=projection,
                                 element_layer=element_layer, target_name=name, unit=unit)
    except ImportError as err:
        raise click.UsageError(str(err)) from None
    for note in [where, *result.notes]:
        click.echo(f"note: {note}", err=True)
    write_inspection(result, out, overwrite=overwrite,
                     info={"model": str(model_path), "data": where})
    shown = result.table().drop(columns=["dead_units"])
    click.echo(shown.to_string(index=False, float_format="{:.3f}".format, na_rep="-"))
    agreement = result.element_agreement[result.element_layer]
    click.echo(f"Elements in {result.element_layer}: the nearest neighbour of "
               f"{agreement:.0%} is in the same periodic-table group (chance "
               f"{result.element_chance:.0%}).")
    click.echo(f"Inspected {len(result.formulas):,} formulas in {result.seconds:.0f} s. "
               f"Wrote inspect.json, inspect.csv and the figures to {out}/")


# ---------------------------------------------------------------- featurize
@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Features file: .csv or .parquet.")
@click.option("--preset", default="magpie", show_default=True,
              type=RegistryChoice("stoichnet.chem", "PRESETS"),
              help="Element property table.")
@click.option("--formula-col", default="formula", show_default=True)
@click.option("--target-col", default=None, help="Target column to copy next to the features.")
@click.option("--impute", type=RegistryChoice("stoichnet.chem.featurizers", "IMPUTE_POLICIES"),
              help="Fill missing element properties this way (default: refuse).")
@click.option("--drop-unsupported", is_flag=True,
              help="Drop (and report) formulas with elements the table lacks (default: refuse).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def featurize(input_path, output_path, preset, formula_col, target_col, impute,
              drop_unsupported, overwrite):
    """Composition features (CBFV statistics of an element table) of every formula.

    Output: formula (and target) columns, then one column per feature, e.g.
    "magpie avg Number".

    \b
    Examples:
      stoichnet featurize in.csv --preset magpie --output features.parquet
      stoichnet featurize data.xlsx --target-col Ef --preset oliynyk --output features.csv
    """
    from stoichnet.chem.featurizers import CompositionFeaturizer, UnsupportedElementError
    from stoichnet.chem.tables import read_table
    from stoichnet.util.files import atomic_file, check_output_file

    suffix = table_suffix(output_path)
    check_output_file(output_path, overwrite)
    table = read_table(input_path, formula_col, target_col, duplicates="keep")
    featurizer = CompositionFeaturizer(
        preset, impute=impute, on_unsupported="drop" if drop_unsupported else "raise")
    try:
        features = featurizer.transform(table["formula"], as_frame=True)
    except UnsupportedElementError as err:
        shown = "; ".join(f"row {table.index[i]} {formula!r} has {', '.join(symbols)}"
                          for i, formula, symbols in
                          zip(err.rows[:5], err.formulas, err.unsupported, strict=False))
        more = f" (and {len(err.rows) - 5} more)" if len(err.rows) > 5 else ""
        raise click.ClickException(
            f"{len(err.rows)} formula(s) contain elements the {preset} table lacks: {shown}{more}. "
            "Remove those rows, or pass --drop-unsupported to drop them with a report.") from None
    frame = pd.concat([table.loc[features.index, [c for c in table.columns
                                                   if c != "target" or target_col]], features],
                      axis=1)
    frame.index.name = "row"
    with atomic_file(output_path, overwrite) as tmp:
        frame.to_csv(tmp) if suffix == ".csv" else frame.to_parquet(tmp)
    click.echo(str(featurizer.report_), err=True)
    click.echo(f"Wrote {frame.shape[0]} rows x {features.shape[1]} features to {output_path}",
               err=True)


# ---------------------------------------------------------------- cross-validation, learning curves
def protocol_options(func):
    """The options `cv` and `learning-curve` share: the rows (--dataset or --data), the
    models, where the files go, and how the jobs run."""
    options = [
        click.option("--dataset", metavar="NAME",
                     help="Registered dataset (all its files pooled), e.g. CritExam__Ef, "
                          "matbench_expt_is_metal."),
        click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False),
                     help="Table of one's own (.csv, .tsv, .xlsx, .parquet) instead of --dataset."),
        click.option("--formula-col", default="formula", show_default=True,
                     help="Formula column of the table."),
        click.option("--target-col", default="target", show_default=True,
                     help="Target column of the table."),
        click.option("--duplicates", type=RegistryChoice("stoichnet.chem.tables", "DUPLICATES"),
                     help="Rows with the same composition: raise (default for --data), mean, "
                          "first or keep (a dataset's default: keep and warn)."),
        click.option("--models", metavar="LIST",
                     help="Comma-separated models, as in compare (default regression: "
                          "elemnet,rf,ridge,mean; classification: elemnet,rf,majority)."),
        click.option("--task", type=TASK_CHOICE, default="auto", show_default=True,
                     help="auto: classification for a 0/1 or text target."),
        click.option("--epochs", type=click.IntRange(min=1),
                     help="Maximum epochs of each network (default: the recipe's)."),
        click.option("--recipe", type=RECIPE_CHOICE, help="Network training recipe."),
        click.option("--drop-unsupported", is_flag=True,
                     help="Drop (and report) rows with elements outside ElemNet's 86 "
                          "inputs (default: refuse; Roost and CrabNet take every element)."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Seed of the run: folds, subsets, validation rows, every model."),
        click.option("--out", "out_dir", type=click.Path(file_okay=False), metavar="DIR",
                     help="Output folder; DIR/jobs/ keeps every finished training."),
        click.option("--overwrite", is_flag=True, help="Replace the result files in DIR."),
    ]
    for option in reversed(options):
        func = option(func)
    return executor_options(func)


def load_rows(opts: dict, raw: bool = False, subset: int | None = None):
    """``stoichnet.evaluate.cv.Rows`` of --dataset or --data; contradictions are usage
    errors."""
    from stoichnet.evaluate.cv import load_rows as load

    if (opts["dataset"] is None) == (opts["data_path"] is None):
        raise click.UsageError("give either --dataset NAME or --data FILE (not both)")
    return load(opts["dataset"], path=opts["data_path"], formula_col=opts["formula_col"],
                target_col=opts["target_col"], duplicates=opts["duplicates"], subset=subset,
                seed=opts["seed"], task=opts["task"], raw=raw)


def model_options(opts: dict) -> dict:
    """The keyword arguments of cross_validate/learning_curve that the shared options give."""
    return {"models": parse_models(opts["models"]), "task": opts["task"],
            "epochs": opts["epochs"], "recipe": opts["recipe"], "seed": opts["seed"],
            "drop_unsupported": opts["drop_unsupported"], "jobs": opts["jobs"],
            "scheduler": opts["scheduler"], "progress": True}


def exit_jobs_interrupted(cache: Path) -> None:
    click.echo(f"\nInterrupted: finished trainings are kept in {cache}/; run the same command "
               "again to compute only the missing ones.", err=True)
    raise click.exceptions.Exit(EXIT_INTERRUPTED)


@cli.command()
@protocol_options
@click.option("--protocol", type=RegistryChoice("stoichnet.evaluate.cv", "PROTOCOLS"),
              default="kfold", show_default=True,
              help="kfold: the folds of --split; matbench: Matbench v0.1's five folds "
                   "(KFold, shuffle, random_state 18012019) over the rows as in the file.")
@click.option("--split", type=RegistryChoice("stoichnet.evaluate.cv", "SPLITS"),
              default="random", show_default=True,
              help="random; chemical-system: each chemical system (Fe-O) in one fold only; "
                   "element: the formulas with --holdout-element are the test fold.")
@click.option("--holdout-element", metavar="SYMBOL",
              help="The element of --split element, e.g. Li.")
@click.option("--folds", type=click.IntRange(min=2),
              help="Folds of --protocol kfold (default 5).")
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True,
              help="Repeated k-fold: fold the rows anew this many times.")
@click.option("--subset", type=click.IntRange(min=2), metavar="N",
              help="Use a seeded random N rows (quick runs; not with --protocol matbench).")
def cv(protocol, split, holdout_element, folds, repeats, subset, **opts):
    """Cross-validate the network and the baselines on the same folds.

    Prints each metric's mean ± standard deviation and 95% t-interval over the folds, and
    one sentence on the network vs the random forest: the folds each wins and the
    Nadeau-Bengio corrected resampled t-test, saying when the difference is not
    significant. Networks stop early on 10% of their training fold. Writes DIR/cv.json,
    DIR/folds.csv (fold x model x metric), DIR/predictions.csv (every row's out-of-fold
    prediction by every model), DIR/folds.png, and with --protocol matbench
    DIR/matbench_results.json (Matbench's per-fold record layout).

    \b
    Examples:
      stoichnet cv --dataset matbench_expt_is_metal --protocol matbench --out runs/metal-cv
      stoichnet cv --dataset CritExam__Ef --subset 5000 --split chemical-system --out runs/ef-cs
      stoichnet cv --dataset CritExam__Ef --subset 5000 --split element --holdout-element Li
      stoichnet cv --data mine.csv --target-col gap --folds 10 --repeats 3 --models elemnet,rf
    """
    from stoichnet.evaluate.cv import (
        CV_FILES,
        MATBENCH_FILE,
        check_cv_output,
        cross_validate,
        write_cv,
    )

    out = Path(opts["out_dir"] or f"cv-{opts['dataset'] or Path(opts['data_path'] or '').stem}")
    files = CV_FILES + ((MATBENCH_FILE,) if protocol == "matbench" else ())
    check_cv_output(out, opts["overwrite"], files)
    rows = load_rows(opts, raw=protocol == "matbench", subset=subset)
    for note in rows.notes:
        click.echo(f"note: {note}", err=True)
    try:
        result = cross_validate(
            rows.frame[["formula", "target"]], folds=folds, repeats=repeats, split=split,
            holdout_element=holdout_element, protocol=protocol, unit=rows.unit, ids=rows.ids,
            name=rows.name, notes=rows.notes, cache_dir=out / "jobs", **model_options(opts))
    except KeyboardInterrupt:
        exit_jobs_interrupted(out / "jobs")
    paths = write_cv(result, out, overwrite=opts["overwrite"])
    click.echo(result.table())
    sentence = result.verdict()
    if sentence:
        click.echo(sentence)
    elif result.failed_folds():  # no forest to compare with: say it all the same
        label, diagnosis = result.failed_folds()[0]
        click.echo(f"The network did not learn in {len(result.failed_folds())} of "
                   f"{result.n_folds} folds ({result.describe_folds()}); in {label}, "
                   f"{diagnosis}")
    calibration = result.calibration_table()
    if calibration:
        click.echo("\nUncertainty calibration, mean over the test folds (each recalibrated on "
                   "its validation rows; the forest, which trains on them, out of bag):")
        click.echo(calibration)
    click.echo(f"Wrote {', '.join(p.name for p in paths)} to {out}/")


@cli.command("learning-curve")
@protocol_options
@click.option("--test", "test_path", type=click.Path(exists=True, dir_okay=False),
              help="Fixed test table for --data (default: a seeded 15% of it; a dataset's "
                   "test file).")
@click.option("--sizes", default="100,300,1000,3000,10000,30000", show_default=True,
              metavar="LIST", help="Comma-separated training-set sizes.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Random subsets per size (intervals over repeats; 1: bootstrap intervals).")
def learning_curve(test_path, sizes, repeats, **opts):
    """Test error against training-set size, and where the network overtakes the forest.

    Every model trains on random subsets of the training pool of each size (nested within
    a repeat) and is scored on one fixed test set. Prints the mean ± std per size and the
    crossover: the smallest size at which the network beats the forest with
    non-overlapping 95% intervals, or "not within the sizes tried". Writes
    DIR/learning_curve.json, DIR/learning_curve.csv and DIR/learning_curve.png (log x).

    \b
    Examples:
      stoichnet learning-curve --dataset CritExam__Ef --models elemnet,rf --out runs/ef-lc
      stoichnet learning-curve --dataset matbench_glass --sizes 100,300,1000,3000 --repeats 5
      stoichnet learning-curve --data mine.csv --test held_out.csv --sizes 50,100,200
    """
    from stoichnet.evaluate.cv import check_cv_output
    from stoichnet.evaluate.learning_curve import (
        FILES,
        parse_sizes,
        pool_and_test,
        write_learning_curve,
    )
    from stoichnet.evaluate.learning_curve import (
        learning_curve as run_curve,
    )

    sizes = parse_sizes(sizes)
    out = Path(opts["out_dir"] or f"learning-curve-"
               f"{opts['dataset'] or Path(opts['data_path'] or '').stem}")
    check_cv_output(out, opts["overwrite"], FILES)
    if test_path is not None and opts["dataset"] is not None:
        raise click.UsageError("--test goes with --data, not with --dataset")
    rows = load_rows(opts)
    test = None if test_path is None else load_rows({**opts, "dataset": None,
                                                     "data_path": test_path})
    pool, held, notes = pool_and_test(rows, test, seed=opts["seed"])
    for note in notes:
        click.echo(f"note: {note}", err=True)
    try:
        result = run_curve(pool, held, sizes=sizes, repeats=repeats, unit=rows.unit,
                           name=rows.name, notes=notes, cache_dir=out / "jobs",
                           **model_options(opts))
    except KeyboardInterrupt:
        exit_jobs_interrupted(out / "jobs")
    paths = write_learning_curve(result, out, overwrite=opts["overwrite"])
    summary = result.summary()
    shown = summary[summary["metric"] == result.metric].pivot(index="size", columns="model",
                                                              values="mean")
    click.echo(f"test {result.metric} (mean over {repeats} repeat(s)):")
    click.echo(shown[result.models].to_string(float_format="{:.4g}".format))
    sentence = result.sentence()
    if sentence:
        click.echo(sentence)
    click.echo(f"Wrote {', '.join(p.name for p in paths)} to {out}/")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings (dropped rows, duplicates kept) as one readable line, without source code."""
    click.echo(f"warning: {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: a one-line error and a non-zero exit on bad input,
    the traceback only with ``--debug``."""
    args = sys.argv[1:] if argv is None else argv
    try:
        with warnings.catch_warnings():  # restores the default display afterwards
            warnings.showwarning = _show_warning
            code = cli.main(args=args, prog_name="stoichnet", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except (ValueError, TypeError, OSError, KeyError, FloatingPointError) as exc:
        if "--debug" in args:
            raise
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        click.echo(f"Error: {'; '.join(lines) or type(exc).__name__}", err=True)
        return 1
    # without standalone mode click returns an Exit's code instead of raising it
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
