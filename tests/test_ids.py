"""The one id rule (pipeline.ids) and the one CSV-cell rule (pipeline.csv_safety) at layer 0."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError, InvalidIdError
from pipeline.ids import MAX_ID_CHARS, validate_id


@pytest.mark.parametrize("value", ["s1", "S12", "a/b%c&d<e>", "s1'; DROP TABLE sessions; --", 't"1', "séance 3",
                                   "患者-7", "x" * MAX_ID_CHARS, "a b", "émoji🙂", "Петров", "山田たろう", "Anna-李"])
def test_valid_ids_are_returned(value):
    assert validate_id("session", value) == value


@pytest.mark.parametrize("value, shown", [
    ("", "empty"),
    ("x" * (MAX_ID_CHARS + 1), f"{MAX_ID_CHARS + 1} characters"),
    ("x" * 100_000, "100000 characters"),
    (" s1", "whitespace"), ("s1\u00a0", "whitespace"),
    ("s\t1", "U+0009"), ("s\x7f1", "U+007F"), ("s\x9b1", "U+009B"),
    ("s\u202e1", "U+202E (RIGHT-TO-LEFT OVERRIDE)"), ("s\u2066x", "U+2066"), ("\ufeffs1", "U+FEFF"),
    ("s\u200d1", "U+200D"), ("s\u2028", "U+2028"), ("s\u2029", "U+2029"), ("s\ud8001", "U+D800"),
])
def test_invalid_ids_name_the_rule(value, shown):
    with pytest.raises(InvalidIdError) as e:
        validate_id("session", value)
    assert shown in str(e.value) and str(e.value).startswith("session id")
    assert isinstance(e.value, ConfigError) and e.value.code == "invalid_id"


def test_non_text_is_refused():
    for value in (None, 12, ["s1"], b"s1"):
        with pytest.raises(InvalidIdError, match="must be text"):
            validate_id("client", value)


def test_ids_are_returned_in_nfc():
    assert validate_id("client", "Se\u0301ance") == "S\u00e9ance"
    # the length bound applies to the normalised form
    assert validate_id("client", "e\u0301" * MAX_ID_CHARS) == "\u00e9" * MAX_ID_CHARS


@pytest.mark.parametrize("value, scripts", [("S\u0430m", "Cyrillic and Latin"), ("\u0405\u0430m", "Cyrillic and Latin"),
                                            ("p\u03b1ul", "Greek and Latin")])
def test_ids_mixing_look_alike_scripts_are_refused(value, scripts):
    with pytest.raises(InvalidIdError, match=f"mixes letters of the {scripts} scripts") as e:
        validate_id("client", value)
    assert e.value.code == "invalid_id" and value not in str(e.value)


def test_ids_that_differ_only_by_case_or_look_alike_letters_clash():
    from pipeline.ids import clash_problem, id_key

    # Latin, lower case, Cyrillic, fullwidth
    assert id_key("S12") == id_key("s12") == id_key("\u040512") == id_key("\uff3312") == "s12"
    assert id_key("S12") != id_key("S13") and id_key("\u041f\u0435\u0442\u0440\u043e\u0432") != id_key("Petrov")
    assert "only by letter case" in clash_problem("session", "s12", ["S12", "x"])
    assert "look-alike letters" in clash_problem("session", "\u040512", ["S12"])
    assert clash_problem("session", "S12", ["S12", "S13"]) is None  # the same id is no clash
