"""Errors a user can fix. The CLI prints them as one line; anything else is a bug and keeps its traceback."""


class UserError(Exception):
    """Bad input or a missing file; the message says what is wrong and what is allowed."""

    exit_code = 2  # the CLI's exit status: 2 for a bad argument (a setting, a checkpoint path), 1 when MNIST
    # is missing or an image cannot be read


class ConfigError(UserError, ValueError):
    """A setting with a value it may not take."""
