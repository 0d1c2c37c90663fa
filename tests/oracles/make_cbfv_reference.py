"""Write CBFV 1.1.0 reference features for stoichnet's oracle tests and benchmark.

Runs ONLY inside the pinned CBFV environment (tests/oracles/cbfv-requirements.txt);
tests/oracles/cbfv_oracle.py builds that environment and calls this script.

    python make_cbfv_reference.py sample --data DIR --out DIR
        10,000 distinct formulas drawn with a fixed seed from every composition CSV
        under DIR, featurised with each preset (and magpie with sum_feat=True, saved as
        "magpie-sum"); plus a few edge cases (edge_cases.json).
    python make_cbfv_reference.py run --formulas FILE --preset magpie --out DIR
        one preset on the formulas of FILE (one per line), timing generate_features.

Output (per preset, under --out): ``<preset>.features.npy`` (n_kept, n_features) float64,
``<preset>.json`` with the column names, ``rows_kept`` (positions in the input list of
the rows CBFV returned, in order), ``skipped`` (CBFV's list of formulas with elements
missing from its table, which it keeps as if those properties were zero),
``seconds`` and ``cpu_seconds`` (wall and process time of generate_features).
"""

import argparse
import contextlib
import io
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from CBFV import composition

PRESETS = ("magpie", "oliynyk", "mat2vec", "jarvis", "onehot")
SAMPLE_SIZE = 10_000
SEED = 20_260_505
# Formulas that exercise CBFV's silent behaviours, each run with magpie after "Fe2O3":
# "NaN" as text is sodium nitride (and occurs in the shared data); a missing value;
# a variable "x" (CBFV drops the row without a word); Og, absent from the magpie table
# (CBFV featurises it as zeros); D, not an element (CBFV crashes).
EDGE_CASES = ("NaN", None, "Li1-xCoO2", "Og2O", "D2O")


def generate(formulas: list, preset: str, sum_feat: bool = False) -> dict:
    """CBFV's generate_features on ``formulas``; returns features and bookkeeping."""
    frame = pd.DataFrame({"formula": formulas, "target": np.zeros(len(formulas))})
    # CBFV prints progress and notes to stdout; keep stdout for the caller's messages.
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        start, start_cpu = time.perf_counter(), time.process_time()
        features, _, _, skipped = composition.generate_features(
            frame, elem_prop=preset, sum_feat=sum_feat
        )
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    # generate_features drops rows containing "x" before featurising, then drops all-NaN
    # rows from the result and keeps the index of that intermediate list.
    after_x = np.array([i for i, f in enumerate(formulas) if "x" not in f], dtype=np.int64)
    return {
        "features": features.to_numpy(dtype=np.float64),
        "columns": features.columns.tolist(),
        "rows_kept": after_x[features.index.to_numpy()].tolist(),
        "skipped": list(skipped),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "printed": printed.getvalue(),
    }


def save(result: dict, preset: str, out: Path) -> None:
    np.save(out / f"{preset}.features.npy", result.pop("features"))
    (out / f"{preset}.json").write_text(json.dumps(result))


def sample_formulas(data: Path) -> list[str]:
    """SAMPLE_SIZE distinct formulas from all composition CSVs under ``data``, seeded."""
    paths = sorted(data.glob("benchmark/*/*.csv")) + sorted(data.glob("matbench/*.csv"))
    if not paths:
        raise SystemExit(f"no composition CSVs under {data}")
    # Read as text: pandas would turn the formula "NaN" (sodium nitride) into a missing value.
    formulas = set()
    for path in paths:
        column = pd.read_csv(path, usecols=["formula"], dtype=str, keep_default_na=False)
        formulas.update(column["formula"])
    distinct = sorted(formulas)
    rng = np.random.default_rng(SEED)
    picked = rng.choice(len(distinct), size=SAMPLE_SIZE, replace=False)
    sample = [distinct[i] for i in picked]
    if "NaN" in formulas and "NaN" not in sample:
        sample[-1] = "NaN"
    return sample


def edge_case(formula) -> dict:
    try:
        result = generate(["Fe2O3", formula], "magpie")
    except Exception as error:  # noqa: BLE001 - recording CBFV's failure is the point
        return {"formula": formula, "error": f"{type(error).__name__}: {error}"}
    result["features"] = result["features"].tolist()
    return {"formula": formula, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sample = commands.add_parser("sample")
    sample.add_argument("--data", type=Path, required=True)
    sample.add_argument("--out", type=Path, required=True)
    run = commands.add_parser("run")
    run.add_argument("--formulas", type=Path, required=True)
    run.add_argument("--preset", choices=PRESETS, required=True)
    run.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    if args.command == "run":
        formulas = args.formulas.read_text(encoding="utf-8").splitlines()
        save(generate(formulas, args.preset), args.preset, args.out)
        return
    formulas = sample_formulas(args.data)
    (args.out / "formulas.json").write_text(json.dumps(formulas))
    for preset in PRESETS:
        save(generate(formulas, preset), preset, args.out)
    save(generate(formulas, "magpie", sum_feat=True), "magpie-sum", args.out)
    (args.out / "edge_cases.json").write_text(json.dumps([edge_case(f) for f in EDGE_CASES]))


if __name__ == "__main__":
    main()
