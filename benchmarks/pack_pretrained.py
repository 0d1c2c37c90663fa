"""Pack a network trained by ``stoichnet train`` as a pretrained model shipped in the package.

Reads MODEL (and its card MODEL.json), scores it on the dataset's validation and test
splits as trained (float32) and after rounding its weights to float16, and writes
``src/stoichnet/models/pretrained/<name>.npz`` (float16, compressed) with its model card
``<name>.json``: the training data, its licence and citations, the architecture and
recipe, the commands that made it, and both test errors. Prints the file's SHA-256 for
``stoichnet.models.shipped.PRETRAINED``. Refuses a package file over 10 MB.

The shipped formation-energy model (benchmarks/README.md, "The pretrained
formation-energy model"):

    stoichnet --threads 1 train --dataset CritExam__Ef --epochs 60 --seed 0 --out ef60.npz
    python benchmarks/pack_pretrained.py ef60.npz --name formation_energy \\
        --dataset CritExam__Ef --epochs 60 --overwrite
    python benchmarks/pack_pretrained.py src/stoichnet/models/pretrained/formation_energy.npz \\
        --name formation_energy --dataset CritExam__Ef --sigma-head --overwrite

With ``--sigma-head`` MODEL is a network this script packed (one output); it gets a second
output, log sigma, fitted on the dataset's training rows with every other weight fixed
(``stoichnet.models.add_sigma_head``: the hidden layers and the mean column stay bit for
bit, so the transfer-learning and inspection results, which read the hidden layers, and
the mean predictions stay as they were), and the card gets what ``stoichnet train``
writes for a network with an uncertainty: the recalibration fitted on the validation
rows, the test rows' calibration raw and recalibrated, and the training data's domain.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from stoichnet import __version__
from stoichnet.chem import ElementFractions, load_dataset
from stoichnet.evaluate.data import load_split
from stoichnet.evaluate.metrics import mae
from stoichnet.evaluate.model_card import load_network, uncertainty_card
from stoichnet.evaluate.uncertainty import METHODS
from stoichnet.models import PRETRAINED, add_sigma_head, from_card
from stoichnet.nn import load_model, save_model
from stoichnet.util.files import atomic_file

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / "stoichnet" / "models" / "pretrained"
MAX_BYTES = 10_000_000

SOURCES = {
    "CritExam__Ef": {
        "training_data": (
            "CritExam__Ef of the CrabNet benchmark (Wang et al. 2021): Materials Project "
            "formation energies of the compounds of Bartel et al. 2020; the network was "
            "trained on its train split (59,509 formulas) with early stopping on its val "
            "split (12,752); its test split (12,753) was never seen in training"),
        "licence": (
            "Materials Project data: CC BY 4.0 (attribution: Materials Project, Jain et al. "
            "2013); the CrabNet benchmark splits: MIT licence. The network's weights are "
            "stoichnet's own (MIT), trained on these data with attribution."),
        "citations": [
            "A. Jain et al., APL Materials 1, 011002 (2013) (the Materials Project)",
            "C. J. Bartel et al., npj Comput. Mater. 6, 97 (2020) (the compounds)",
            "A. Y.-T. Wang et al., npj Comput. Mater. 7, 77 (2021) (CrabNet; the splits)",
            "D. Jha et al., Sci. Rep. 8, 17593 (2018) (ElemNet; the architecture)",
        ],
    },
}


def score(model, card, frame) -> float:
    """MAE (the target's unit) of the network on ``frame``'s formulas."""
    return mae(frame["target"].to_numpy(), from_card(model, card).predict(frame["formula"]))


def architecture(model) -> str:
    """The card's description of an ElemNet network, e.g. "ElemNet-17 (1024-...-32-1, ReLU)"."""
    layers = [layer for layer in model.layers if hasattr(layer, "units")]
    outputs = " (outputs: mean, log sigma)" if layers[-1].units == 2 else ""
    return (f"ElemNet-{len(layers)} ({'-'.join(str(layer.units) for layer in layers)}, ReLU)"
            f"{outputs}, {model.count_params():,} parameters, input: the fractions of "
            "ElemNet's 86 elements")


def write_card(out: Path, card: dict, overwrite: bool) -> None:
    with atomic_file(out.with_suffix(".json"), overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(card, indent=2, default=str) + "\n")


def checked_size(out: Path) -> tuple[int, str]:
    """(bytes, SHA-256) of the written package file; one over the limit is removed."""
    size = os.path.getsize(out)
    if size > MAX_BYTES:
        out.unlink()
        raise SystemExit(f"{out} is {size:,} bytes, over the package's {MAX_BYTES:,}")
    return size, hashlib.sha256(out.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="model file written by `stoichnet train` (with "
                        "--sigma-head: one this script packed)")
    parser.add_argument("--name", required=True, choices=sorted(PRETRAINED))
    parser.add_argument("--dataset", required=True, choices=sorted(SOURCES))
    parser.add_argument("--epochs", type=int,
                        help="the --epochs the model was trained with (for the card; "
                             "needed without --sigma-head)")
    parser.add_argument("--sigma-head", action="store_true",
                        help="add a log-sigma output to a packed network (module docstring)")
    parser.add_argument("--recalibration", choices=METHODS, default="isotonic",
                        help="with --sigma-head: how sigma is recalibrated on the val rows "
                             "(as `stoichnet train --recalibration`)")
    parser.add_argument("--out-dir", type=Path, default=PACKAGE_DIR)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    if args.sigma_head:
        add_head(args)
    elif args.epochs is None:
        parser.error("--epochs is required (except with --sigma-head)")
    else:
        pack(args)


def pack(args) -> None:
    """Round a trained network to float16 and write it with its card (module docstring)."""
    model, card = load_network(args.model)
    entry = PRETRAINED[args.name]
    if card.get("unit") != entry.unit:
        raise SystemExit(f"{args.model} predicts in {card.get('unit')!r}; "
                         f"{args.name} is registered in {entry.unit!r}")
    if card.get("learning_check"):
        raise SystemExit(f"{args.model} is not worth shipping: {card['learning_check']}")
    val, test = (load_dataset(args.dataset, split=s) for s in ("val", "test"))
    scores = {"val_mae_float32": score(model, card, val),
              "test_mae_float32": score(model, card, test)}
    out = args.out_dir / entry.file
    args.out_dir.mkdir(parents=True, exist_ok=True)
    save_model(model, out, overwrite=args.overwrite, storage="float16")
    half = load_model(out)
    scores |= {"val_mae_float16": score(half, card, val),
               "test_mae_float16": score(half, card, test)}
    size, digest = checked_size(out)
    shipped = {
        **card,
        "name": args.name,
        "property": entry.property,
        "unit": entry.unit,
        **SOURCES[args.dataset],
        "architecture": architecture(model),
        "storage": "float16 weights (rounded from float32 after training), compressed .npz",
        "file_bytes": size,
        "sha256": digest,
        "scores": {k: round(v, 5) for k, v in scores.items()},
        "made_by": [
            f"stoichnet --threads 1 train --dataset {args.dataset} --epochs {args.epochs} "
            f"--seed {card['hyperparameters']['random_state']} --out MODEL.npz",
            f"python benchmarks/pack_pretrained.py MODEL.npz --name {args.name} "
            f"--dataset {args.dataset} --epochs {args.epochs}",
        ],
        "packed_with": __version__,
    }
    shipped.pop("data", None)  # the trainer's local description; training_data says it
    write_card(out, shipped, args.overwrite)
    for key, value in scores.items():
        print(f"{key}: {value:.5f} {entry.unit}")
    print(f"{out}: {size:,} bytes, sha256 {digest}")
    print(f"float16 costs {np.subtract(scores['test_mae_float16'], scores['test_mae_float32']):+.5f}"
          f" {entry.unit} of test MAE")


def add_head(args) -> None:
    """Give a packed one-output network a log-sigma output (module docstring)."""
    model, card = load_network(args.model)
    if "test_mae_float16" not in card.get("scores", {}):
        raise SystemExit(f"{args.model} is not a network this script packed (its card has no "
                         "float16 scores): pack it first, without --sigma-head")
    if model.output_shape != (1,):
        raise SystemExit(f"{args.model} has {model.output_shape[0]} outputs; --sigma-head adds "
                         "a log-sigma output to a network that predicts only a mean")
    entry = PRETRAINED[args.name]
    seed = card["hyperparameters"]["random_state"]
    split = load_split(args.dataset, seed=seed)  # the rows `stoichnet train` used
    X = np.asarray(ElementFractions().transform(split.train["formula"].to_numpy(dtype=object)),
                   dtype=model.dtype)
    headed = add_sigma_head(model, X, split.train["target"].to_numpy())
    out = args.out_dir / entry.file
    args.out_dir.mkdir(parents=True, exist_ok=True)
    save_model(headed, out, overwrite=args.overwrite, storage="float16")
    estimator = from_card(load_model(out), card)  # the weights as shipped
    shift = max(float(np.max(np.abs(estimator.predict(frame["formula"])
                                    - from_card(model, card).predict(frame["formula"]))))
                for frame in (split.val, split.test))
    scores = card["scores"] | {"val_mae_float16": score(estimator.model_, card, split.val),
                               "test_mae_float16": score(estimator.model_, card, split.test)}
    size, digest = checked_size(out)
    shipped = {
        **card,
        **uncertainty_card(estimator, split, seed, args.recalibration),
        "uncertainty": ["aleatoric"],
        "sigma_head": (
            f"output column 1 is log sigma (eV/atom) of a Gaussian, a linear function of the "
            f"last hidden layer's {model.layers[-2].units} activations, fitted by "
            f"stoichnet.models.add_sigma_head (Gaussian negative log-likelihood, L-BFGS, a "
            f"convex problem) on the {len(split.train):,} training formulas with every "
            f"other weight fixed: the hidden layers and the mean column are those of the "
            f"network without the head, bit for bit (largest change of a val/test mean: "
            f"{shift:.2g} {entry.unit}, float32 rounding); its sigma is recalibrated "
            f"({args.recalibration}) on the {len(split.val):,} validation formulas"),
        "architecture": architecture(headed),
        "file_bytes": size,
        "sha256": digest,
        "scores": {k: round(v, 5) for k, v in scores.items()},
        "made_by": [*card["made_by"],
                    f"python benchmarks/pack_pretrained.py MODEL.npz --name {args.name} "
                    f"--dataset {args.dataset} --sigma-head --recalibration "
                    f"{args.recalibration} (MODEL.npz: the file the command before wrote)"],
        "packed_with": __version__,
    }
    write_card(out, shipped, args.overwrite)
    print(f"largest change of a mean prediction: {shift:.3g} {entry.unit}")
    for stage, report in shipped["calibration_test"].items():
        print(f"test rows, {stage} sigma: " + ", ".join(
            f"{key} {value:.4g}" for key, value in report.items()))
    print(f"{out}: {size:,} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
