"""Transfer learning vs training from scratch vs the forest, from `stoichnet cv` runs.

Reads each run folder's cv.json (written by, for every small set,
``stoichnet cv --dataset SET --models elemnet,elemnet-transfer,rf,mean --jobs 2 --out DIR``)
and prints one Markdown row per set: the mean ± std over the folds of each model's headline
metric (MAE or ROC-AUC), what transfer gains over the network from scratch, the corrected
t-test p-values against the forest, and how many of the set's compositions the pretrained
network saw in training (CritExam__Ef train + val): transfer measured on compositions the
pretrained model was trained on must say so.

    STOICHNET_DATA=../shared/data python benchmarks/transfer_table.py runs/transfer/*
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stoichnet.chem import load_dataset, parse_formulas
from stoichnet.evaluate.cv import load_rows

PRETRAINING = ("CritExam__Ef", ("train", "val"))


def composition_keys(formulas) -> set:
    """Each formula's element fractions rounded to 1e-6, as a hashable key."""
    parsed = parse_formulas(list(formulas), errors="collect")
    return {tuple(sorted((el, round(f, 6)) for el, f in c.fractions().items()))
            for c in parsed.compositions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="cv output folders")
    args = parser.parse_args()
    seen = composition_keys(load_dataset(PRETRAINING[0], split=list(PRETRAINING[1]),
                                         progress=False)["formula"])
    print("| set (rows) | metric | mean / majority | rf | elemnet (scratch) | elemnet-transfer "
          "| transfer gain | p vs rf: scratch / transfer | compositions seen in pretraining |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for run in args.runs:
        cv = json.loads((run / "cv.json").read_text())
        metric = "MAE" if cv["task"] == "regression" else "ROC-AUC"
        models = cv["models"]

        def cell(model, metric=metric, models=models):
            m = models.get(model, {}).get(metric)
            return "–" if m is None else f"{m['mean']:.4g} ± {m['std']:.2g}"

        subset = next((n for n in cv["notes"] if n.startswith("--subset")), None)
        rows = load_rows(cv["name"], subset=int(subset.split()[1].rstrip(":")) if subset
                         else None, seed=cv["settings"]["seed"])
        keys = composition_keys(rows.frame["formula"])
        overlap = len(keys & seen) / len(keys)
        scratch, tuned = (models[m][metric]["mean"] for m in ("elemnet", "elemnet-transfer"))
        gain = (scratch - tuned) / scratch if metric == "MAE" else tuned - scratch
        gain_text = f"{gain:+.1%} MAE" if metric == "MAE" else f"{gain:+.3f} ROC-AUC"
        p = {n: (cv["comparisons"].get(n) or {}).get(metric) for n in
             ("elemnet", "elemnet-transfer")}
        p_text = " / ".join("–" if c is None or c["p_value"] is None else f"{c['p_value']:.2g}"
                            for c in p.values())
        baseline = "mean" if metric == "MAE" else "majority"
        print(f"| {cv['name']}{' ' + subset.split(':')[0] if subset else ''} ({cv['n_rows']:,})"
              f" | {metric} | {cell(baseline)} | {cell('rf')} | {cell('elemnet')} | "
              f"{cell('elemnet-transfer')} | {gain_text} | {p_text} | {overlap:.0%} |")


if __name__ == "__main__":
    main()
