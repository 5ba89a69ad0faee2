import re

import pytest

from learning_machines._ids import MAX_ID_LENGTH, check_id, same_identity
from learning_machines.exceptions import ValidationError


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (123, "pass user_id=str(123)"),
        ("", "empty"),
        ("   ", "empty"),
        ("alice\x1fbob", "U+001F"),
        ("a\ud800", "U+D800"),
        ("x" * (MAX_ID_LENGTH + 1), "at most"),
        (" alice", "leading or trailing"),
    ],
)
def test_unusable_ids_are_refused_with_the_fix(value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        check_id(value, name="user_id")


def test_ordinary_ids_pass_unchanged() -> None:
    for value in ("alice", "a" * MAX_ID_LENGTH, "user@example.com", "Zoë 2"):
        assert check_id(value, name="user_id") == value


def test_identities_differing_only_by_case_or_width_are_the_same_person() -> None:
    assert same_identity("Alice", "alice")
    assert same_identity("ＡＬＩＣＥ", "alice")  # full-width letters, NFKC
    assert not same_identity("alice", "alicia")
    assert not same_identity(None, None)
