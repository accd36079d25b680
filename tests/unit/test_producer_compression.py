"""STREAMSENSE_PRODUCER_COMPRESSION: what reaches Faust, and a missing codec library
refused when the app is built, not at the producer's first send."""

from __future__ import annotations

import pytest
from aiokafka import codec as codecs
from pydantic import ValidationError

from streams.errors import ConfigurationError
from streams.runtime.app import producer_compression
from streams.settings import Settings


def test_none_is_no_compression_and_gzip_needs_nothing_more() -> None:
    assert producer_compression("none") is None
    assert producer_compression("gzip") == "gzip"


@pytest.mark.parametrize("codec", ["lz4", "zstd"])
def test_a_codec_without_its_library_is_a_configuration_error(
    codec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(codecs, f"has_{codec}", lambda: False)
    with pytest.raises(ConfigurationError, match=f"COMPRESSION={codec} needs the cramjam"):
        producer_compression(codec)
    monkeypatch.setattr(codecs, f"has_{codec}", lambda: True)
    assert producer_compression(codec) == codec


def test_the_setting_takes_only_the_offered_codecs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().producer_compression == "none"
    monkeypatch.setenv("STREAMSENSE_PRODUCER_COMPRESSION", "snappy")
    with pytest.raises(ValidationError, match="producer_compression"):
        Settings()
