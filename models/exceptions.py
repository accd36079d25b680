"""Errors raised by the models package."""

from __future__ import annotations

from streamsense.errors import StreamsenseError


class ModelsError(StreamsenseError):
    """Base class of every error the models package raises on purpose."""


class DataError(ModelsError):
    """A data file is missing, unreadable or holds a record that cannot be used."""


class RegistryError(ModelsError):
    """The registry cannot do what was asked (unknown task or version, no alias, ...)."""


class TamperedArtifactError(RegistryError):
    """A version's files do not match its manifest (hash, missing or unexpected file)."""


class AgreementError(ModelsError):
    """An exported model disagrees with the model it was exported from beyond tolerance."""
