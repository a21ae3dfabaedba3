"""The one exception type for bad user input: the mains print its message as one line and exit non-zero."""


class ConfigError(ValueError):
    """Input the user can fix; the message names the problem and the fix."""
