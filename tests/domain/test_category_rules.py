"""The rules a category's own fields obey (uniqueness and ownership are in test_use_cases.py)."""

from __future__ import annotations

import pytest

from todo_core.category import NAME_MAX, CategoryFields
from todo_core.errors import ValidationFailed


def rejection(fields: CategoryFields) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as raised:
        fields.validated()
    return {error.field: error.message for error in raised.value.errors}


def test_name_is_trimmed() -> None:
    assert CategoryFields(name="  Work \n").validated().name == "Work"


@pytest.mark.parametrize("name", ["", "  ", "\t"])
def test_blank_name_is_refused(name: str) -> None:
    assert rejection(CategoryFields(name=name)) == {"name": "must not be blank"}


def test_name_of_50_characters_is_accepted_and_51_refused() -> None:
    assert CategoryFields(name="n" * NAME_MAX).validated().name == "n" * NAME_MAX
    assert "at most 50" in rejection(CategoryFields(name="n" * (NAME_MAX + 1)))["name"]


@pytest.mark.parametrize("name", ["a\x00b", "a\ud800"])
def test_name_no_store_can_keep_is_refused(name: str) -> None:
    assert "name" in rejection(CategoryFields(name=name))


def test_color_is_optional() -> None:
    assert CategoryFields(name="Work").validated().color is None


def test_color_is_lowercased() -> None:
    assert CategoryFields(name="Work", color="#1E90FF").validated().color == "#1e90ff"


@pytest.mark.parametrize("color", ["1e90ff", "#1e90f", "#1e90ff0", "#1e90fg", "red", "#FFF", "", " #1e90ff"])
def test_color_that_is_not_hash_and_six_hex_digits_is_refused(color: str) -> None:
    assert "#rrggbb" in rejection(CategoryFields(name="Work", color=color))["color"]


def test_color_with_a_trailing_newline_is_refused() -> None:
    assert "color" in rejection(CategoryFields(name="Work", color="#1e90ff\n"))


def test_both_broken_fields_are_reported_at_once() -> None:
    assert set(rejection(CategoryFields(name=" ", color="blue"))) == {"name", "color"}
