"""The one exception type users see.

Every failure a user can cause or fix (bad input, a missing service, a dataset too small)
raises `FlywheelError` with a one-line reason; the CLI prints it and exits non-zero.
Anything else is a bug and keeps its traceback.

Messages are redacted as they are made (`redact`): an error names the store it could not reach,
and whatever prints it, a log, a terminal or an open endpoint, must not show its password.
"""

import re

# the password of a URL's user info (scheme://user:password@host), and secret-looking query or
# connection-string parameters (password=…, token=…)
_USERINFO = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^/\s@]*(?=@)")
_PARAMETER = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|token|secret|api_key|apikey|access_key)=)[^&\s;]+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` with every URL password and secret parameter replaced by `***`."""
    text = _USERINFO.sub(r"\g<head>***", text)
    return _PARAMETER.sub(r"\g<head>***", text)


class FlywheelError(Exception):
    """A failure with a reason the user can act on, worded as one line (and redacted)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(redact(str(message)))
