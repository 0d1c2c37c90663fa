"""Model files: the architecture, compile settings and weights of a model in one archive.

A model file is an ``nn.archive`` archive (``.npz``, SHA-256, never pickle) whose
config is ``{"format": "stoichnet.model", "format_version": 1, "model":
Sequential.get_config(), "compile": Sequential.get_compile_config() (loss, metrics,
optimizer) or null}`` and whose one array ``weights`` is the model's ``flat_params``
(layer order, see ``Sequential``), in the model's dtype or rounded to float16.

``save_model`` writes one; ``read_model_file`` reads and checks one.

An ensemble file holds several networks (a deep ensemble) in one archive: config
``{"format": "stoichnet.ensemble", "format_version": 1, "members": [{"model": ...,
"compile": ...}, ...]}`` and one array ``weights_<k>`` per member. ``save_models`` writes
one; ``read_models_file`` reads either kind (a model file is one member), so every
model file written before ensembles existed still loads. Building the
model from it is ``nn.sequential.load_model`` (exported as ``stoichnet.nn.load_model``),
so that imports point one way: ``sequential`` -> ``io`` -> ``archive``. Loading only
constructs layer classes named in ``layers.base.LAYERS`` from plain JSON values: no
code from the file is executed. Every problem is a ``ModelFileError`` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stoichnet.util.checks import check_choice

from .archive import check_format, read_archive, write_archive
from .errors import ModelFileError

FORMAT = "stoichnet.model"
FORMAT_VERSION = 1
WHAT = "stoichnet model file"
ENSEMBLE_FORMAT = "stoichnet.ensemble"
ENSEMBLE_FORMAT_VERSION = 1


STORAGE = (None, "float16")
"""How ``save_model`` may store the weights: None (the model's dtype) or "float16" (half
the bytes of float32, compressed; read back into the model's dtype)."""


def save_model(model, path, overwrite: bool = False, storage: str | None = None) -> None:
    """Write ``model`` (a built ``Sequential``) to ``path`` crash-safely, with the
    umask's file mode (see ``archive.write_archive``). Refuses an existing ``path``
    unless ``overwrite``. ``storage="float16"`` rounds the weights to half precision
    (for models that ship inside the package; measure what the rounding costs) and
    compresses the file."""
    model._require_built("save")
    check_choice("storage", storage, STORAGE)
    weights = model.flat_params
    if storage == "float16":
        with np.errstate(over="ignore"):
            weights = weights.astype(np.float16)
        if not np.all(np.isfinite(weights)):
            raise ValueError("a weight is beyond float16's range (65504): store it in the "
                             "model's dtype (storage=None)")
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.get_config(),
        "compile": model.get_compile_config(),
    }
    write_archive(path, config, {"weights": weights}, overwrite=overwrite,
                  compress=storage is not None)


def read_model_file(path) -> tuple[dict, np.ndarray]:
    """Read and verify a ``save_model`` file: (its config, the (n_params,) weights).

    Raises ``FileNotFoundError`` when there is no file, ``ModelFileError`` when it is
    not an intact stoichnet model file of this format version.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"no model file at {path}")
    config, arrays = read_archive(path, WHAT)
    if config.get("format") == ENSEMBLE_FORMAT:
        raise ModelFileError(f"{path} holds an ensemble of networks; read it with "
                             "read_models_file (load_models)")
    if set(arrays) != {"weights"}:
        raise ModelFileError(
            f"{path} is not a stoichnet model file: it holds arrays {sorted(arrays)}, "
            "expected ['weights']"
        )
    check_format(path, config, FORMAT, FORMAT_VERSION, WHAT)
    return config, arrays["weights"]


def _members(models) -> list:
    models = list(models)
    if not models:
        raise ValueError("save_models needs at least one model")
    for model in models:
        model._require_built("save")
    return models


def save_models(models, path, overwrite: bool = False) -> None:
    """Write built ``Sequential`` networks (the members of an ensemble) to one file,
    crash-safely as ``save_model``; refuses an existing ``path`` unless ``overwrite``."""
    models = _members(models)
    config = {
        "format": ENSEMBLE_FORMAT,
        "format_version": ENSEMBLE_FORMAT_VERSION,
        "members": [{"model": m.get_config(), "compile": m.get_compile_config()}
                    for m in models],
    }
    write_archive(path, config, {f"weights_{k}": m.flat_params for k, m in enumerate(models)},
                  overwrite=overwrite)


def read_models_file(path) -> list[tuple[dict, np.ndarray]]:
    """Read and verify a ``save_models`` file, or a ``save_model`` file as one member:
    [(member config {"model", "compile"}, (n_params,) weights), ...].

    Raises ``FileNotFoundError`` / ``ModelFileError`` as :func:`read_model_file`."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no model file at {path}")
    config, arrays = read_archive(path, WHAT)
    if config.get("format") != ENSEMBLE_FORMAT:
        return [read_model_file(path)]
    check_format(path, config, ENSEMBLE_FORMAT, ENSEMBLE_FORMAT_VERSION, WHAT)
    members = config.get("members")
    expected = {f"weights_{k}" for k in range(len(members or []))}
    if not isinstance(members, list) or not members or set(arrays) != expected:
        raise ModelFileError(
            f"{path} is not an intact stoichnet ensemble file: it lists "
            f"{len(members) if isinstance(members, list) else members!r} member(s) and holds "
            f"arrays {sorted(arrays)}")
    return [(member, arrays[f"weights_{k}"]) for k, member in enumerate(members)]
