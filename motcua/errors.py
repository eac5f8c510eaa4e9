"""The error every ``motcua`` tool raises for input it refuses or a step that cannot go on.

``motcua`` prints it under the command's name (``motcua netgear: ...``) and exits 2; any
other exception is a bug and keeps its traceback. Invalid input files raise
:class:`motcua.validation.InputError` instead, which lists every problem.
"""


class ToolError(Exception):
    """A tool refused its input or could not go on; the message says why and what to do."""
