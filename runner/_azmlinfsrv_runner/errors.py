"""What the runner tells the server about a failure: the error kind, a message, and the
details of the Python exception that caused it (PROTOCOL.md, "Errors").

Owns the `Failure` exception every handler raises for a JSON-RPC error answer, the
traceback text with the runner's own frames trimmed, and the exception's type, message
and location in the user's code (for the server's log, a debugging answer and
telemetry). The client-facing texts of the kinds the server words itself (`user_error`,
`timeout`, `not_serializable`, `internal`) are not here: the server builds them.
"""

import os
import traceback

# This package's folder, and the folder the interpreter was started in (it holds only
# runner.py and this package, and is sys.path[0]).
PACKAGE_FOLDER = os.path.dirname(os.path.abspath(__file__))
RUNNER_FOLDER = os.path.dirname(PACKAGE_FOLDER)
_DEADLINE_FILE = os.path.join(PACKAGE_FOLDER, "deadline.py")


class Failure(Exception):
    """A request that gets a JSON-RPC error: `kind` and `message` as in PROTOCOL.md.

    `error` is the Python exception that caused it, if any: its details travel in the
    error's `data`.
    """

    def __init__(self, kind, message, error=None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.error = error

    def error_data(self):
        data = {"kind": self.kind}
        if self.error is not None:
            data.update(exception_data(self.error))
        return data


def exception_data(error):
    """`traceback`, `exception_type`, `exception_message` and `location` of `error`."""
    return {
        "traceback": user_traceback(error),
        "exception_type": qualified_type_name(type(error)),
        "exception_message": _safe_str(error),
        "location": user_location(error),
    }


def exception_summary(error):
    """`ValueError: bad thing`: one line naming the exception, as the reference's messages do."""
    text = _safe_str(error)
    return "{}: {}".format(type(error).__name__, text) if text else type(error).__name__


def describe(error):
    """`mymodule.MyError: bad thing`: the exception as the last line of its traceback shows it."""
    text = _safe_str(error)
    name = qualified_type_name(type(error))
    return "{}: {}".format(name, text) if text else name


def qualified_type_name(cls):
    """The exception type's name as Python's tracebacks show it (`ValueError`, `mymodule.MyError`)."""
    module = getattr(cls, "__module__", None)
    name = getattr(cls, "__qualname__", None) or cls.__name__
    if module in (None, "builtins", "__main__"):
        return name
    return "{}.{}".format(module, name)


def _safe_str(error):
    try:
        return str(error)
    except BaseException:
        # What traceback prints for an exception whose __str__ fails.
        return "<exception str() failed>"


# -- where it happened --------------------------------------------------------------


def user_location(error):
    """{"file", "line", "function"} of the innermost frame in the user's code; None if none.

    A SyntaxError (or IndentationError) in a file points at its own file and line (it
    has no frame there). Otherwise the innermost traceback frame that is neither the
    runner's nor the standard library's or an installed package's; failing that, the
    innermost frame outside the runner (the user's code may live in site-packages).
    """
    if isinstance(error, SyntaxError) and error.filename and not str(error.filename).startswith("<"):
        return {"file": str(error.filename), "line": error.lineno, "function": None}
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not frame.filename.startswith("<") and not is_runner_file(frame.filename)]
    if not frames:
        return None
    library_folders = _library_folders()
    chosen = frames[-1]
    for frame in reversed(frames):
        if not _is_under(os.path.realpath(frame.filename), library_folders):
            chosen = frame
            break
    return {"file": os.path.abspath(chosen.filename), "line": chosen.lineno, "function": chosen.name}


_library_folders_cache = []


def _library_folders():
    """The standard library's and installed packages' folders (found on first use: errors only)."""
    if not _library_folders_cache:
        import site
        import sysconfig

        folders = set()
        paths = sysconfig.get_paths()
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            if paths.get(key):
                folders.add(paths[key])
        try:
            folders.update(site.getsitepackages())
        except AttributeError:
            pass  # an old virtualenv's site module has no getsitepackages
        user_site = getattr(site, "USER_SITE", None)
        if user_site:
            folders.add(user_site)
        _library_folders_cache.append(tuple(
            os.path.join(os.path.realpath(folder), "") for folder in folders if folder))
    return _library_folders_cache[0]


def _is_under(path, folders):
    return any(path.startswith(folder) for folder in folders)


# -- tracebacks ---------------------------------------------------------------------


def user_traceback(error):
    """The traceback text of `error` without the runner's own frames around the user's.

    Frames of the runner (and of importlib) that called into the script are dropped from
    the top, and the scoring timeout's signal handler from the bottom, so the text shows
    the script's code only, as a traceback of the user's own program would.
    """
    summary = traceback.TracebackException(type(error), error, error.__traceback__)
    _trim_runner_frames(summary)
    return "".join(summary.format())


def _trim_runner_frames(summary):
    stack = summary.stack
    while stack and _is_runner_frame(stack[0].filename):
        del stack[0]
    while stack and os.path.abspath(stack[-1].filename) == _DEADLINE_FILE:
        del stack[-1]
    for linked in (summary.__cause__, summary.__context__):
        if linked is not None:
            _trim_runner_frames(linked)


def _is_runner_frame(filename):
    return filename.startswith("<frozen importlib") or is_runner_file(filename)


def is_runner_file(filename):
    """Whether `filename` is one of the runner's own files (runner.py or this package)."""
    folder = os.path.dirname(os.path.abspath(filename))
    return folder == PACKAGE_FOLDER or folder == RUNNER_FOLDER
