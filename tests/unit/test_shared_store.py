"""STREAMSENSE_REQUIRE_SHARED_STORE: a SQLite feedback store refused in one clear line."""

from __future__ import annotations

import pytest

from streams.compose import require_shared_store
from streams.errors import ConfigurationError, LocalFeedbackStoreError
from streams.settings import Settings
from streamsense.errors import StreamsenseError


def _settings(url: str, required: bool) -> Settings:
    return Settings.model_validate({"feedback_db_url": url, "require_shared_store": required})


def test_a_sqlite_store_is_refused_when_a_shared_one_is_required() -> None:
    with pytest.raises(LocalFeedbackStoreError) as caught:
        require_shared_store(_settings("sqlite:////var/lib/streamsense/state/feedback.db", True))
    assert isinstance(caught.value, ConfigurationError)
    assert isinstance(caught.value, StreamsenseError)  # the CLI's one line and exit 2
    message = str(caught.value)
    assert "\n" not in message
    for needle in ("STREAMSENSE_REQUIRE_SHARED_STORE", "STREAMSENSE_FEEDBACK_DB_URL", "postgresql"):
        assert needle in message


@pytest.mark.parametrize(
    ("url", "required"),
    [
        ("sqlite:///.streamsense/feedback.db", False),
        ("postgresql://streamsense@db.internal:5432/streamsense", True),
        ("postgresql://streamsense@db.internal:5432/streamsense", False),
    ],
)
def test_other_combinations_pass(url: str, required: bool) -> None:
    require_shared_store(_settings(url, required))


def test_the_setting_is_off_by_default_so_a_laptop_keeps_its_sqlite_file() -> None:
    assert Settings.model_fields["require_shared_store"].default is False
