"""Networks trained by stoichnet and shipped inside the package, found with
``importlib.resources`` and checked by SHA-256 before they are read.

Each is an ElemNet network stored with float16 weights (``nn.io.save_model(...,
storage="float16")``) next to its model card (JSON): the training data and its licence,
the architecture and recipe, the command that trained it, and its test error. The cards
have the layout of ``stoichnet train``'s cards, so ``stoichnet predict`` reads both alike.

The formation-energy network has two outputs, the mean and the log sigma of a Gaussian (an
aleatoric head fitted after training with the hidden layers and the mean fixed,
``models.uncertainty.add_sigma_head``); its card holds the sigma's recalibration.

``stoichnet.models.pretrained("formation_energy")`` is a fitted
:class:`~stoichnet.models.ElemNetRegressor` around one;
``ElemNetRegressor(init="pretrained")`` fine-tunes one on other data (transfer learning,
:mod:`stoichnet.models.transfer`). How the files were made: ``benchmarks/README.md``,
"The pretrained formation-energy model"; ``benchmarks/pack_pretrained.py`` writes them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources

from ..nn import ModelFileError, Sequential, load_model
from ..util.checks import check_choice


@dataclass(frozen=True)
class PretrainedModel:
    """One shipped network.

    Attributes:
        name: registry key, e.g. "formation_energy".
        property: what it predicts, in words.
        unit: the unit of its predictions, e.g. "eV/atom".
        file: the model file inside ``stoichnet/models/pretrained/`` (its card is the same
            name with ``.json``).
        sha256: hex SHA-256 of the model file's bytes.
    """

    name: str
    property: str
    unit: str
    file: str
    sha256: str

    @property
    def card_file(self) -> str:
        return self.file.removesuffix(".npz") + ".json"


PRETRAINED: dict[str, PretrainedModel] = {
    m.name: m for m in (
        PretrainedModel(
            name="formation_energy",
            property="formation energy (Materials Project, DFT)",
            unit="eV/atom",
            file="formation_energy.npz",
            sha256="84b943485609c0177421873e457f043d93dc96564b688636a2cdfe8d605fb31c",
        ),
    )
}
"""Every shipped network, by name."""

DEFAULT_PRETRAINED = "formation_energy"
"""The network ``stoichnet predict`` uses without a model file, and ``init="pretrained"``."""


def _resource(file: str):
    """The package's ``stoichnet/models/pretrained/<file>`` (a Traversable)."""
    return resources.files(__package__) / "pretrained" / file


def load_pretrained(name: str = DEFAULT_PRETRAINED) -> tuple[Sequential, dict]:
    """The shipped network ``name`` and its model card.

    Raises:
        ValueError: unknown name (the message lists the shipped ones).
        ModelFileError: the file is missing, or its SHA-256 is not the registered one
            (a damaged or replaced file is never loaded).
    """
    entry = PRETRAINED[check_choice("pretrained model", name, tuple(PRETRAINED))]
    with resources.as_file(_resource(entry.file)) as path:
        if not path.is_file():
            raise ModelFileError(f"the pretrained model {name!r} is not installed "
                                 f"(no stoichnet/models/pretrained/{entry.file})")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != entry.sha256:
            raise ModelFileError(
                f"the pretrained model file {path} has SHA-256 {digest}, not the registered "
                f"{entry.sha256}: it is damaged or was replaced; reinstall stoichnet")
        model = load_model(path)
    card = json.loads(_resource(entry.card_file).read_text(encoding="utf-8"))
    return model, card
