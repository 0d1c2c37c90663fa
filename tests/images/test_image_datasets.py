"""The image registry (moved from the composition registry's tests)."""

from stoichnet.chem import list_datasets as list_composition_datasets
from stoichnet.images import DATASETS, list_datasets


def test_registry_metadata_is_complete():
    table = list_datasets()
    assert list(table.index) == list(DATASETS) == ["mnist"]
    assert {"property", "unit", "task", "rows", "source", "licence"} <= set(table)
    assert table.loc["mnist", "rows"] == 10000
    assert table.loc["mnist", "task"] == "classification"
    for d in DATASETS.values():
        assert d.property and d.source and d.licence, d.name
        assert d.images.urls and d.labels.urls, d.name


def test_composition_datasets_do_not_list_images():
    assert "mnist" not in list_composition_datasets().index
