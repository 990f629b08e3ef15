"""The one error type users see: its message is a single sentence naming the problem and the fix."""


class VitswinError(Exception):
    """A problem with the user's input or environment, explained in one sentence.

    The CLI prints the message alone (no traceback) and exits non-zero.
    """
