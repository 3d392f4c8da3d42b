"""One registry shape: models, schemes, datasets and symmetry mechanisms answer an unknown name alike."""

import pytest

from detinit.data import list_datasets, load_dataset
from detinit.data.base import DATASETS
from detinit.init import get_scheme, list_schemes
from detinit.init.schemes import SCHEMES
from detinit.models import create_model, list_models
from detinit.models.registry import MODELS
from detinit.registry import Registry
from detinit.symmetry import MECHANISMS, make_mechanism
from detinit.symmetry.mechanisms import KNOBS


@pytest.mark.parametrize(
    "registry, names, use, typo, meant",
    [
        (MODELS, list_models(), lambda n: create_model(n), "resnet21", "resnet20"),
        (SCHEMES, list_schemes(), lambda n: get_scheme(n), "kaimin", "kaiming"),
        (DATASETS, list(list_datasets()), lambda n: load_dataset(n), "fashion", "fashion_mnist"),
        (KNOBS, list(MECHANISMS), lambda n: make_mechanism(n), "droput", "dropout"),
    ],
)
def test_every_registry_has_one_shape(registry, names, use, typo, meant):
    assert isinstance(registry, Registry)
    assert sorted(registry.names()) == sorted(names) and len(registry) == len(names)
    assert all(isinstance(d, str) and d for d in registry.descriptions().values())  # a line for `detinit list`
    with pytest.raises(ValueError, match=rf"unknown {registry.kind} '{typo}'; available: .*Did you mean .*{meant}"):
        use(typo)


def test_a_name_is_registered_once_and_must_be_a_string():
    registry = Registry("thing")
    registry.add("a", 1)
    with pytest.raises(ValueError, match="thing 'a' is registered twice"):
        registry.add("a", 2)
    with pytest.raises(ValueError, match="a thing name must be a non-empty string"):
        registry.add("", 3)
    assert "a" in registry and list(registry) == ["a"] and registry.get("a") == 1


@pytest.mark.parametrize("kind", ["", 5, None])
def test_a_registry_names_its_kind(kind):
    with pytest.raises(ValueError, match="Registry: kind must be a non-empty string"):
        Registry(kind)


def test_a_description_is_a_string():
    with pytest.raises(ValueError, match="the description of thing 'a' must be a string, got 5"):
        Registry("thing").add("a", 1, 5)
