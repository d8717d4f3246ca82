"""``create_model`` answers a name that is not a string with ``UnknownModelError`` naming it
(it was an ``AttributeError: 'NoneType' object has no attribute 'lower'``)."""

import pytest

from mnas_keras.applications.registry import UnknownModelError, create_model


@pytest.mark.parametrize("name, shown", [(None, "NoneType: None"), (3, "int: 3"), (["mnasnet_a1"], "list: ['mnasnet_a1']")])
def test_non_string_names_are_named(name, shown):
    with pytest.raises(UnknownModelError) as info:
        create_model(name)
    assert str(info.value).startswith(f"a model name must be a string like 'mnasnet_a1'; received {shown}. "
                                      "Expected one of ['mnasnet_a1', ")
