"""The one exception type the CLI turns into a single line and a non-zero exit.

Anything a user can fix (a bad path, a model that cannot be loaded, a threshold out of
range) is raised as `CurateError` with a sentence that says what to do; everything else is
a bug and keeps its traceback.
"""


class CurateError(Exception):
    """A problem with the user's input or environment, reported as one clear line."""
