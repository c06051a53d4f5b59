"""The project's exceptions: each message names the file or value and says what to do."""


class Assignment4Error(Exception):
    """Base class: the CLI prints these as one clear message, without a traceback."""


class DatasetError(Assignment4Error):
    """A data set file is missing, unreadable or malformed."""


class ConfigError(Assignment4Error):
    """An unknown experiment, profile or strategy, or an invalid setting."""


class RunError(Assignment4Error):
    """A run is missing, incomplete, or stopped (for example on a NaN loss)."""
