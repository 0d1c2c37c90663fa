"""Quickstart: the network and the random forest side by side on a small slice of
CritExam__Ef (formation energy, eV/atom): about 1.5 CPU-minutes (4 min wall on a busy
2-core machine).

    export STOICHNET_DATA=../shared/data
    python examples/quickstart.py

The same run from the command line:
    stoichnet compare --dataset CritExam__Ef --subset 2000 --epochs 10 --out quickstart
"""

from stoichnet.chem.datasets import load_dataset
from stoichnet.evaluate import compare, write_comparison


def main() -> None:
    train, val, test = (
        load_dataset("CritExam__Ef", split).sample(n=2000, random_state=0)
        for split in ("train", "val", "test")
    )
    result = compare(train, val, test, epochs=10, seed=0, unit="eV/atom")
    print(result.table())
    print(result.verdict())
    paths = write_comparison(result, "quickstart", overwrite=True)
    print("wrote", ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
