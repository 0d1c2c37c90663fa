"""Studies: value parsing, one network per value, the on-disk cache."""

import json

import numpy as np
import pytest

from stoichnet.chem import ELEMNET_ELEMENTS, ElementFractions
from stoichnet.evaluate.study import NetworkConfig, StudyData, parse_values, run_study

FORMULAS = ["Fe2O3", "NaCl", "FeCl3", "MgO", "Al2O3", "SiO2", "CuO", "ZnS", "TiO2", "CaF2",
            "LiF", "KBr", "Fe3O4", "MnO2", "NiO", "CoO", "Cr2O3", "V2O5", "BaTiO3", "SrTiO3"]


def _data(seed=0, shift=0.0) -> StudyData:
    rng = np.random.default_rng(seed)
    parts = []
    for n in (60, 20, 20):
        formulas = rng.choice(FORMULAS, size=n)
        X = ElementFractions().transform(formulas)
        y = 2.0 * X[:, ELEMNET_ELEMENTS.index("O")] + shift
        parts.append((formulas, X, y))
    (f_tr, X_tr, y_tr), (_, X_va, y_va), (f_te, X_te, y_te) = parts
    return StudyData(X_tr, y_tr, X_va, y_va, X_te, y_te, tuple(f_tr), tuple(f_te))


@pytest.mark.parametrize(
    ("knob", "text", "expected"),
    [("depth", "1, 2,17", [1, 2, 17]), ("learning_rate", "1e-4,3e-3", [1e-4, 3e-3]),
     ("optimizer", "sgd,adam", ["sgd", "adam"]), ("dropout", [0.1, "0.2"], [0.1, 0.2])],
)
def test_parse_values(knob, text, expected):
    assert parse_values(knob, text) == expected


@pytest.mark.parametrize(
    ("knob", "text", "message"),
    [("width", "1", "knob 'width'"), ("depth", "1,x", "'x' for depth is not a valid int"),
     ("depth", "", "non-empty"), ("depth", "2,2", "repeat 2"), ("batch_size", "1,,2", "non-empty")],
)
def test_parse_values_rejects(knob, text, message):
    with pytest.raises(ValueError, match=message):
        parse_values(knob, text)


def test_fingerprint_follows_the_data():
    assert _data().fingerprint() == _data().fingerprint()
    assert _data().fingerprint() != _data(shift=1.0).fingerprint()


@pytest.mark.slow
def test_study_caches_finished_values(tmp_path):
    data = _data()
    base = NetworkConfig(epochs=2, seed=0)
    first = run_study("depth", [1, 2], data, base=base, cache_dir=tmp_path, progress=False)
    assert [r.cached for r in first.values] == [False, False]
    assert [r.epochs_run for r in first.values] == [2, 2]
    for r in first.values:
        assert r.best_val_mae == min(r.val_mae_per_epoch) and len(r.val_mae_per_epoch) == 2
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 3 and any(f.startswith("random_forest") for f in files)

    again = run_study("depth", [1, 2, 3], data, base=base, cache_dir=tmp_path, progress=False)
    assert [r.cached for r in again.values] == [True, True, False]
    for old, new in zip(first.values, again.values, strict=False):
        assert new.test_mae == old.test_mae and new.wall_s == old.wall_s
    assert again.rf_test_mae == first.rf_test_mae

    changed = run_study("depth", [1], _data(shift=1.0), base=base, cache_dir=tmp_path,
                        progress=False)
    assert not changed.values[0].cached  # other data: a different cache entry


@pytest.mark.slow
def test_study_table_and_figures(tmp_path):
    result = run_study("learning_rate", "1e-3,1e-2", _data(), base=NetworkConfig(epochs=1, depth=2),
                       cache_dir=tmp_path, jobs=2, unit="eV/atom", progress=False)
    table = result.table()
    assert list(table["learning_rate"]) == [1e-3, 1e-2]
    assert {"test_mae", "best_val_mae", "epochs_run", "wall_s", "rf_test_mae"} <= set(table)
    stored = json.loads(next(tmp_path.glob("learning_rate_0.001-*.json")).read_text())
    assert stored["test_mae"] == table["test_mae"].iloc[0]
    curves = result.curves_figure().axes[0]
    assert [line.get_label() for line in curves.lines] == [
        "learning_rate=0.001 (validation)", "learning_rate=0.01 (validation)"]
    score = result.score_figure().axes[0]
    assert score.get_xscale() == "log"
    assert score.lines[1].get_ydata()[0] == pytest.approx(result.rf_test_mae)


@pytest.mark.slow
def test_study_interrupted_then_resumed_recomputes_nothing_finished(tmp_path, on_batch):
    from stoichnet.nn import TrainingInterrupted

    data, base = _data(), NetworkConfig(epochs=2, batch_size=16, seed=0)  # 4 batches/epoch
    plain = run_study("depth", [1, 2], data, base=base, cache_dir=tmp_path / "plain",
                      progress=False)
    # depth 1 done (8 batches), depth 2 interrupted in its first epoch
    count = on_batch(8 + 3, lambda model: model.interrupt())
    cache, ckpt = tmp_path / "cache", tmp_path / "ckpt"
    with pytest.raises(TrainingInterrupted):
        run_study("depth", [1, 2], data, base=base, cache_dir=cache, checkpoint_dir=ckpt,
                  progress=False)
    assert sorted(p.name.split("-")[0] for p in cache.iterdir()) == ["depth_1"]
    assert [p.name.split("-")[0] for p in ckpt.iterdir()] == ["depth_2"]  # depth 1's cached

    count[0] = 0
    resumed = run_study("depth", [1, 2], data, base=base, cache_dir=cache, checkpoint_dir=ckpt,
                        resume=True, progress=False)
    assert count[0] == 8 - 3  # depth 1 reused from the cache, depth 2 continued
    assert [r.cached for r in resumed.values] == [True, False]
    assert list(ckpt.iterdir()) == []
    for old, new in zip(plain.values, resumed.values, strict=True):
        assert (new.test_mae, new.val_mae_per_epoch) == (old.test_mae, old.val_mae_per_epoch)


def test_without_a_terminal_each_value_is_one_line(tmp_path, capsys):
    data = _data()
    base = NetworkConfig(epochs=1, seed=0)
    first = run_study("depth", [1], data, base=base, cache_dir=tmp_path)
    again = run_study("depth", [1], data, base=base, cache_dir=tmp_path)
    err = capsys.readouterr().err
    assert "\r" not in err  # no progress bar in a log
    (run,), (cached,) = first.values, again.values
    assert err.splitlines() == [
        f"depth=1: fitted in {run.wall_s:.1f} s (1 epochs), best val MAE "
        f"{run.best_val_mae:.4g}, test MAE {run.test_mae:.4g}",
        f"depth=1: reused from the cache (1 epochs), best val MAE {cached.best_val_mae:.4g}, "
        f"test MAE {cached.test_mae:.4g}",
    ]


@pytest.mark.slow
def test_a_study_on_a_dask_cluster_matches_the_serial_one(tmp_path):
    data, base = _data(), NetworkConfig(epochs=1, seed=0)
    serial = run_study("depth", [1, 2], data, base=base, cache_dir=tmp_path / "serial",
                       progress=False)
    dask = run_study("depth", [1, 2], data, base=base, cache_dir=tmp_path / "dask", jobs=2,
                     scheduler="local", progress=False)
    assert dask.rf_test_mae == serial.rf_test_mae
    for old, new in zip(serial.values, dask.values, strict=True):
        assert (new.value, new.test_mae, new.val_mae_per_epoch) == (
            old.value, old.test_mae, old.val_mae_per_epoch)


def test_every_value_records_its_layers_and_the_figure_shows_them(tmp_path):
    data, base = _data(), NetworkConfig(epochs=2, depth=4, seed=0)
    result = run_study("activation", ["relu", "sigmoid"], data, base=base, cache_dir=tmp_path,
                       progress=False)
    for r in result.values:
        assert len(r.layer_stats) == 4  # the Dense layers of a depth-4 network
        for stats in r.layer_stats.values():
            assert sorted(stats) == ["dead_fraction", "grad_norm", "weight_norm"]
            assert all(len(v) == 2 for v in stats.values())
    first_epoch, _, _, dead = result.layers_figure().axes
    for line, r in zip(first_epoch.lines, result.values, strict=True):
        assert line.get_label() == f"activation={r.value}"
        assert list(line.get_ydata()) == [s["grad_norm"][0] for s in r.layer_stats.values()]
    assert first_epoch.get_yscale() == "log"
    sigmoid = result.values[1].layer_stats
    assert all(s["dead_fraction"] == [0.0, 0.0] for s in sigmoid.values())  # never exactly 0
    again = run_study("activation", ["relu", "sigmoid"], data, base=base, cache_dir=tmp_path,
                      progress=False)
    assert [r.layer_stats for r in again.values] == [r.layer_stats for r in result.values]
