"""The one exception type users see.

Every failure a user can cause or fix (bad input, a missing service, a dataset too small)
raises `FlywheelError` with a one-line reason; the CLI prints it and exits non-zero.
Anything else is a bug and keeps its traceback.
"""


class FlywheelError(Exception):
    """A failure with a reason the user can act on, worded as one line."""
