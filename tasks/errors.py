"""Errors whose message is written for the person who started the analysis."""


class PoserError(Exception):
    """An expected failure with a message a user can act on; never retried."""


class ConfigError(PoserError):
    """The configuration is missing, malformed or out of range."""


class InvalidVideoError(PoserError):
    """The input is not a video we can analyse, or the trim window does not fit it."""


class ModelMissingError(PoserError):
    """A model file is not where the configuration says."""


class DeviceUnavailableError(PoserError):
    """The requested accelerator is not present on this machine."""
