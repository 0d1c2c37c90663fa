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
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from stoichnet import __version__
from stoichnet.chem import load_dataset
from stoichnet.evaluate.metrics import mae
from stoichnet.evaluate.model_card import load_network
from stoichnet.models import PRETRAINED, from_card
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="model file written by `stoichnet train`")
    parser.add_argument("--name", required=True, choices=sorted(PRETRAINED))
    parser.add_argument("--dataset", required=True, choices=sorted(SOURCES))
    parser.add_argument("--epochs", type=int, required=True,
                        help="the --epochs the model was trained with (for the card)")
    parser.add_argument("--out-dir", type=Path, default=PACKAGE_DIR)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()

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
    size = os.path.getsize(out)
    if size > MAX_BYTES:
        out.unlink()
        raise SystemExit(f"{out} is {size:,} bytes, over the package's {MAX_BYTES:,}")
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    layers = [layer for layer in model.layers if hasattr(layer, "units")]
    shipped = {
        **card,
        "name": args.name,
        "property": entry.property,
        "unit": entry.unit,
        **SOURCES[args.dataset],
        "architecture": (
            f"ElemNet-{len(layers)} ({'-'.join(str(layer.units) for layer in layers)}, ReLU), "
            f"{model.count_params():,} parameters, input: the fractions of ElemNet's 86 "
            "elements"),
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
    with atomic_file(out.with_suffix(".json"), overwrite=args.overwrite) as tmp:
        tmp.write_text(json.dumps(shipped, indent=2, default=str) + "\n")
    for key, value in scores.items():
        print(f"{key}: {value:.5f} {entry.unit}")
    print(f"{out}: {size:,} bytes, sha256 {digest}")
    print(f"float16 costs {np.subtract(scores['test_mae_float16'], scores['test_mae_float32']):+.5f}"
          f" {entry.unit} of test MAE")


if __name__ == "__main__":
    main()
