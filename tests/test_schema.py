"""The schema checkers: each accepts what it describes and names the field of what it refuses."""

import pytest

from rnnkit.errors import ModelFileError
from rnnkit.schema import (
    OMIT,
    any_of,
    boolean,
    fail,
    integer,
    list_of,
    number,
    obj,
    one_of,
    optional,
    text,
)


def refuses(check, value, message):
    with pytest.raises(ModelFileError) as e:
        check(value, "config.layers[1].hidden")
    assert str(e.value) == f"config.layers[1].hidden: {message}"


def test_scalars():
    assert integer(1)(5, "p") == 5
    refuses(integer(1), "x", 'expected an integer >= 1, got "x"')
    refuses(integer(1), 0, "expected an integer >= 1, got 0")
    refuses(integer(1, 3), 4, "expected an integer >= 1 and <= 3, got 4")
    refuses(integer(), True, "expected an integer, got true")
    refuses(integer(), 3.0, "expected an integer, got 3.0")
    assert number(0)(2, "p") == 2.0 and isinstance(number()(2, "p"), float)
    refuses(number(0, below=1), 1.0, "expected a finite number >= 0 and < 1, got 1.0")
    refuses(number(), float("nan"), "expected a finite number, got NaN")
    refuses(number(), 10**400, "expected a finite number, got an integer too large for a float")
    refuses(number(), False, "expected a finite number, got false")
    assert boolean()(False, "p") is False
    refuses(boolean(), "yes", 'expected true or false, got "yes"')
    refuses(boolean(), 1, "expected true or false, got 1")
    refuses(text(nonempty=True), "", 'expected a non-empty string, got ""')
    refuses(text(max_len=2), "abc", "expected a string of at most 2 characters, got 3 characters")
    assert one_of("h", "y")("y", "p") == "y"
    refuses(one_of(True, "a"), 1, 'expected one of true, "a", got 1')
    assert optional(integer())(None, "p") is None
    refuses(any_of(integer(), text(), expected="a size or a name"), [],
            "expected a size or a name, got []")
    with pytest.raises(ModelFileError, match=r"^p: expected x, got y$"):
        fail("p", "x", got="y")


def test_long_values_are_shortened():
    with pytest.raises(ModelFileError) as e:
        integer()("x" * 10_000, "p")
    assert len(str(e.value)) < 120


def test_lists_and_objects_name_the_path():
    layer = obj({"hidden": integer(1), "bidirectional": (boolean(), False),
                 "readout": (optional(obj({"units": integer(1)})), OMIT)})
    schema = obj({"layers": list_of(layer, 1, 3)})
    assert schema({"layers": [{"hidden": 2}]}, "config") == {
        "layers": [{"hidden": 2, "bidirectional": False}]}
    with pytest.raises(ModelFileError, match=r'^config\.layers\[1\]\.hidden: expected an '
                                             r'integer >= 1, got "x"$'):
        schema({"layers": [{"hidden": 2}, {"hidden": "x"}]}, "config")
    with pytest.raises(ModelFileError, match=r"^config\.layers\[0\]\.readout\.units: expected"):
        schema({"layers": [{"hidden": 2, "readout": {"units": 0}}]}, "config")
    with pytest.raises(ModelFileError, match=r"^config\.layers\[0\]\.hidden: missing"):
        schema({"layers": [{}]}, "config")
    with pytest.raises(ModelFileError, match=r'^config\.layers\[0\]: unknown key "hiden"'):
        schema({"layers": [{"hidden": 1, "hiden": 2}]}, "config")
    with pytest.raises(ModelFileError, match=r"^config\.layers: expected a list of 1 to 3 items, "
                                             r"got a list of 0$"):
        schema({"layers": []}, "config")
    with pytest.raises(ModelFileError, match=r"^config: expected an object, got \[\]$"):
        schema([], "config")
    assert obj({}, extra=True)({"a": 1}, "p") == {"a": 1}


def test_rules_run_after_the_fields():
    def ordered(d, path):
        if d["lo"] > d["hi"]:
            fail(f"{path}.hi", f"a value >= lo ({d['lo']})", d["hi"])

    schema = obj({"lo": integer(), "hi": integer()}, rules=[ordered])
    assert schema({"lo": 1, "hi": 2}, "w") == {"lo": 1, "hi": 2}
    with pytest.raises(ModelFileError, match=r"^w\.hi: expected a value >= lo \(3\), got 2$"):
        schema({"lo": 3, "hi": 2}, "w")
