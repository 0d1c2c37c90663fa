"""Model files: round trip, refusal to overwrite, and every kind of bad file raising
ModelFileError without executing anything."""

import copy
import io as stdio
import json
import os
import pickle
import stat
import zipfile

import numpy as np
import pytest

from stoichnet.nn import (
    L2,
    Activation,
    Dense,
    Dropout,
    ModelFileError,
    Sequential,
    load_model,
    optimizers,
    save_model,
)
from stoichnet.nn.archive import _digest
from stoichnet.nn.io import FORMAT_VERSION


@pytest.fixture
def model():
    model = Sequential(
        [
            Dense(8, "relu", input_dim=4, kernel_regularizer=L2(0.01)),
            Dropout(0.2, mc_dropout=False),
            Dense(5, use_bias=False, kernel_initializer="he_normal"),
            Activation("tanh"),
            Dense(1),
        ],
        seed=0,
    )
    model.compile(optimizers.Adam(learning_rate=3e-4), "mae", ["mse"])
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(40, 4)), rng.normal(size=40), epochs=2, verbose=0, seed=0)
    return model


def test_round_trip(model, tmp_path):
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = load_model(path)
    X = np.random.default_rng(1).normal(size=(7, 4))
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert loaded.get_config() == model.get_config()
    assert [w.dtype for w in loaded.get_weights()] == [np.float32] * 5
    assert loaded.loss.name == "mae" and loaded.metrics == ["mse"]
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary left


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_model_files_and_checkpoints_get_the_umask_mode(model, tmp_path, umask, mode):
    """Like any file a program writes: a colleague can read the model under umask 022
    (the temporary file's 0600 used to stay; issue 12, item 9)."""
    previous = os.umask(umask)
    try:
        save_model(model, tmp_path / "m.npz")
        model.fit(np.ones((4, 4)), np.ones(4), verbose=0, checkpoint=tmp_path / "run.ckpt")
    finally:
        os.umask(previous)
    for name in ("m.npz", "run.ckpt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode


def test_refuses_to_overwrite(model, tmp_path):
    path = tmp_path / "model.npz"
    path.write_text("precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.save(path)
    assert path.read_text() == "precious"
    model.save(path, overwrite=True)
    assert load_model(path).count_params() == model.count_params()


def test_uncompiled_float64_model_round_trips(tmp_path):
    model = Sequential([Dense(3, "sigmoid", input_dim=2)], dtype="float64", seed=1)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.loss is None and loaded.dtype == np.float64
    assert np.array_equal(loaded.flat_params, model.flat_params)


def rewrite(path, **members):
    """Write an npz like the saved one with some members replaced."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(members)
    path.unlink()
    np.savez(path, **arrays)
    return path


def saved(model, tmp_path):
    path = tmp_path / "model.npz"
    model.save(path)
    return path


def test_truncated_file(model, tmp_path):
    path = saved(model, tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match=rf"{path.name}.*(truncated|corrupted)"):
        load_model(path)


def test_bit_flip_anywhere_in_the_weights(model, tmp_path):
    path = saved(model, tmp_path)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("weights.npy")
    raw[info.header_offset + 200] ^= 0x01  # inside the stored weight bytes
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match=rf"{path.name} is corrupted"):
        load_model(path)


def test_changed_weights_with_a_valid_archive_fail_the_sha256(model, tmp_path):
    path = saved(model, tmp_path)
    with np.load(path) as data:
        weights = data["weights"].copy()
    weights[3] += 1
    rewrite(path, weights=weights)
    with pytest.raises(ModelFileError, match="SHA-256 does not match"):
        load_model(path)


def test_wrong_format_version(model, tmp_path):
    path = saved(model, tmp_path)
    with np.load(path) as data:
        config = json.loads(data["config"].tobytes())
        weights = data["weights"]
    config["format_version"] = FORMAT_VERSION + 1
    config_bytes = json.dumps(config).encode()
    rewrite(
        path,
        config=np.frombuffer(config_bytes, np.uint8),
        sha256=np.frombuffer(_digest(config_bytes, weights).encode(), np.uint8),
    )
    with pytest.raises(ModelFileError, match=rf"format_version {FORMAT_VERSION + 1}.*reads version"):
        load_model(path)


def test_foreign_files(tmp_path):
    other = tmp_path / "other.npz"
    np.savez(other, x=np.arange(3))
    with pytest.raises(ModelFileError, match=r"other.npz is not a stoichnet model file: it holds \['x.npy'\]"):
        load_model(other)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match=r"notes.txt is not a stoichnet model file"):
        load_model(text)
    with pytest.raises(FileNotFoundError, match="no model file"):
        load_model(tmp_path / "missing.npz")


class Exploit:
    """Unpickling this would create a file: the test checks that never happens."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickle_payloads_are_never_executed(model, tmp_path):
    target = tmp_path / "pwned"
    path = saved(model, tmp_path)
    rewrite(path, config=np.array([Exploit(target)], dtype=object))
    with pytest.raises(ModelFileError, match="carries pickled data"):
        load_model(path)
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(Exploit(target)))
    with pytest.raises(ModelFileError, match="not a stoichnet model file"):
        load_model(raw)
    assert not target.exists()


def test_unknown_layer_class_in_config(model, tmp_path):
    path = saved(model, tmp_path)
    with np.load(path) as data:
        config = json.loads(data["config"].tobytes())
        weights = data["weights"]
    config["model"]["layers"][0]["class_name"] = "os.system"
    config_bytes = json.dumps(config).encode()
    buffer = stdio.BytesIO()
    np.savez(
        buffer,
        config=np.frombuffer(config_bytes, np.uint8),
        weights=weights,
        sha256=np.frombuffer(_digest(config_bytes, weights).encode(), np.uint8),
    )
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ModelFileError, match=r"unknown layer class 'os.system'"):
        load_model(path)


@pytest.mark.parametrize("duplicate", [lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy])
def test_pickled_and_deep_copied_models_keep_one_parameter_buffer(model, duplicate):
    model.compile("adam", "mae", ["mse", "accuracy"])
    twin = duplicate(model)
    X = np.random.default_rng(2).normal(size=(8, 4))
    assert np.array_equal(twin.predict(X), model.predict(X))
    for layer in twin.layers:
        for key in layer.params:
            assert np.shares_memory(layer.params[key], twin.flat_params)
            assert np.shares_memory(layer.grads[key], twin.flat_grads)
    before = twin.flat_params.copy()
    twin.train_on_batch(X, np.ones(8))
    assert not np.array_equal(before, twin.flat_params)
    assert not np.array_equal(model.predict(X), twin.predict(X))  # the step reached the layers


def test_float16_storage_rounds_the_weights_and_halves_the_file(model, tmp_path):
    big = Sequential([Dense(256, "relu", input_dim=64), Dense(1)], seed=0)
    save_model(big, tmp_path / "full.npz")
    save_model(big, tmp_path / "half.npz", storage="float16")
    loaded = load_model(tmp_path / "half.npz")
    assert loaded.flat_params.dtype == np.float32
    np.testing.assert_array_equal(loaded.flat_params,
                                  big.flat_params.astype(np.float16).astype(np.float32))
    assert os.path.getsize(tmp_path / "half.npz") < 0.5 * os.path.getsize(tmp_path / "full.npz")
    model.layers[0].params["W"][0, 0] = 1e5
    with pytest.raises(ValueError, match="float16's range"):
        save_model(model, tmp_path / "big.npz", storage="float16")
    with pytest.raises(ValueError, match="storage"):
        save_model(model, tmp_path / "x.npz", storage="int8")
    assert not (tmp_path / "big.npz").exists()


def test_an_ensemble_file_holds_every_member_and_is_checked(model, tmp_path):
    """save_models writes K networks (different architectures and losses too) into one
    archive; load_models gives them back predicting as before; a plain model file loads
    as one member (files from before ensembles); load_model refuses an ensemble file by
    name; a changed member fails the SHA-256."""
    from stoichnet.nn import load_models, save_models

    head = Sequential([Dense(3, "tanh", input_dim=4), Dense(2)], seed=1)
    head.compile("adam", "gaussian_nll")
    path = tmp_path / "ensemble.npz"
    save_models([model, head], path)
    X = np.random.default_rng(2).normal(size=(6, 4))
    loaded = load_models(path)
    assert len(loaded) == 2 and loaded[1].loss.name == "gaussian_nll"
    for before, after in zip([model, head], loaded, strict=True):
        np.testing.assert_array_equal(after.predict(X), before.predict(X))
    save_model(model, tmp_path / "one.npz")
    (one,) = load_models(tmp_path / "one.npz")
    np.testing.assert_array_equal(one.predict(X), model.predict(X))
    with pytest.raises(ModelFileError, match=r"holds an ensemble of networks; .*load_models"):
        load_model(path)
    with np.load(path) as data:
        members = {name: data[name] for name in data.files}
    members["weights_1"] = members["weights_1"] + 1
    with open(tmp_path / "changed.npz", "wb") as f:
        np.savez(f, **members)
    with pytest.raises(ModelFileError, match="SHA-256"):
        load_models(tmp_path / "changed.npz")
    with pytest.raises(FileExistsError):
        save_models([model], path)
