"""Bad user input: one exception type, and the mains' contract of one line on stderr and exit status 2."""

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from hydra.errors import InstantiationException


class ConfigError(ValueError):
    """Input the user can fix; the message names the problem and the fix."""


def user_message(err: Exception) -> str | None:
    """The message of a bad-input error: a ConfigError, or a ValueError a constructor raised on a config value."""
    if isinstance(err, ConfigError):
        return str(err)
    if isinstance(err, InstantiationException) and isinstance(err.__cause__, ValueError):
        return str(err.__cause__)
    return None


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Report bad input as `error: ...` and exit 2; anything else is a bug and keeps its traceback."""
    try:
        yield
    except Exception as err:
        message = user_message(err)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
