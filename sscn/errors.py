"""The one exception type for mistakes a user can make (wrong file, bad parameter, ...).

Its message names the input and says what to do; the CLI prints it as one line.
"""


class SSCNError(ValueError):
    """A user-facing error: the message says what is wrong and how to fix it."""
