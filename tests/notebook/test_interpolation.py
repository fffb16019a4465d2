"""`{name}` interpolation of magic arguments."""

import pytest

from lmql_nb.errors import InterpolationError
from lmql_nb.notebook.magics.interpolation import interpolate, interpolate_values

NS = {"city": "Paris", "n": 3, "pi": 3.14159, "items": [" a", " b"], "info": {"k": "v"}}


@pytest.mark.parametrize("template, expected", [
    ("The capital of {city} is", "The capital of Paris is"),
    ("{n} cities", "3 cities"),
    ("{pi:.2f}", "3.14"),
    ("{items[1]}", " b"),
    ("{info[k]}", "v"),
    ("{city.upper}", None),  # attribute access resolves (a bound method's repr)
    ('JSON: {{"a": {n}}}', 'JSON: {"a": 3}'),
    ("no fields", "no fields"),
])
def test_fields_are_filled_like_str_format(template, expected):
    result = interpolate(template, NS)
    assert result == (expected if expected is not None else template.format(**NS))


@pytest.mark.parametrize("template, needles", [
    ("{missing}", ["'missing'", "{{"]),
    ("{}", ["{{"]),
    ("{0}", ["{{"]),
    ("an open { brace", ["{{"]),
    ("a stray } brace", ["}}"]),
    ("{items[5]}", ["index"]),
])
def test_bad_fields_say_what_to_write(template, needles):
    with pytest.raises(InterpolationError) as caught:
        interpolate(template, NS)
    for needle in needles:
        assert needle in str(caught.value)


def test_a_whole_field_naming_a_list_expands_to_its_items():
    assert interpolate_values("{items}", NS) == [" a", " b"]
    assert interpolate_values("({items})", NS) == ["([' a', ' b'])"]  # not whole: formatted
    assert interpolate_values("{city}", NS) == ["Paris"]
    assert interpolate_values("{{items}}", NS) == ["{items}"]


def test_expanded_items_must_be_strings():
    with pytest.raises(InterpolationError, match="item 1 is int"):
        interpolate_values("{values}", {"values": ["a", 2]})
