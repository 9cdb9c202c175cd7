"""Loads the user's scoring script and decides how its run() is called.

Mirrors the reference server's start-up checks and messages: the script is imported
from its path as the module `entry_module` (or `main` is imported when no entry script
is given), it must define init() and run(), a `driver_module` with a run() takes over
run(), and run()'s signature and decorators choose the input mode.
"""

import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import sys
import types

from . import aml_request
from .errors import RUNNER_FOLDER, Failure, exception_summary
from .logs import SCRIPT_LOGGER

ENTRY_MODULE_NAME = "entry_module"
REQUEST_HEADERS_PARAMETER = "request_headers"

PLAIN, RAWHTTP, SCHEMA = "plain", "rawhttp", "schema"

# The OpenAPI versions the server generates, and the inference-schema names for each.
SWAGGER_VERSION_ALIASES = {"2": ("2", "2.0"), "3": ("3", "3.0"), "3.1": ("3.1",)}


class UserScript:
    """The loaded script: its functions and how run() wants its input."""

    def __init__(self, module, init, run):
        self.module = module
        self.init = init
        self.run = run
        self.input_mode = PLAIN
        self.input_parameter = None  # plain / rawhttp: the name that receives the input
        self.schema_parameters = []  # schema: inspect.Parameter of each input, in order
        self.wants_request_headers = False
        self.schemas = {}


def extend_sys_path(app_root, source_dir):
    """Put the app root (and its source dir) on sys.path as the reference does.

    The working directory comes first, like under gunicorn; the runner's own folder
    moves to the end so that a user module named `runner` (or anything else) wins: the
    runner's own modules are imported already.
    """
    if RUNNER_FOLDER in sys.path:
        sys.path.remove(RUNNER_FOLDER)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    for folder in (app_root, os.path.join(app_root, source_dir) if app_root and source_dir else None):
        if folder and folder not in sys.path:
            sys.path.append(folder)
    sys.path.append(RUNNER_FOLDER)


def load_user_script(entry_script, app_root, log):
    """Import the script and check it; raises Failure (a load kind) with the reference's messages."""
    module = _import_script(entry_script, app_root)
    script_file = getattr(module, "__file__", entry_script)
    if not hasattr(module, "init"):
        raise Failure("bad_script", "User script at {} does not have a init() function defined.".format(script_file))
    if not hasattr(module, "run"):
        raise Failure("bad_script", "User script at {} does not have a run() function defined.".format(script_file))

    run = module.run
    driver = getattr(module, "driver_module", None)
    if isinstance(driver, types.ModuleType) and hasattr(driver, "run"):
        # A generated driver script forwards to the real score script: call that run()
        # directly (the driver's forwarding loses inference-schema arguments), but keep
        # the driver's init(), which may do real work.
        run = driver.run
        log.info(SCRIPT_LOGGER, "Found driver script at {} and the score script at {}".format(
            script_file, getattr(driver, "__file__", driver.__name__)))
    else:
        log.info(SCRIPT_LOGGER, "Found user script at {}".format(script_file))

    script = UserScript(module, module.init, run)
    _analyse_run(script, log)
    script.schemas = swagger_schemas(run)
    return script


# -- importing ----------------------------------------------------------------------


def _import_script(entry_script, app_root):
    if not entry_script:
        return _import_main()
    path = os.path.join(app_root or "", entry_script.replace("/", os.sep))
    # An explicit loader, so that a script whose name does not end in .py loads too.
    loader = importlib.machinery.SourceFileLoader(ENTRY_MODULE_NAME, path)
    spec = importlib.util.spec_from_file_location(ENTRY_MODULE_NAME, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[ENTRY_MODULE_NAME] = module  # so pickle, dataclasses etc. can find it
    # What the script would see run directly (`python score.py`), not the runner's options.
    sys.argv = [path]
    try:
        loader.exec_module(module)
    except FileNotFoundError as error:
        sys.modules.pop(ENTRY_MODULE_NAME, None)
        if os.path.abspath(str(error.filename or "")) == os.path.abspath(path):
            raise Failure("script_not_found", "User script not found: {}".format(error), error)
        raise _import_failure(error)
    except BaseException as error:
        sys.modules.pop(ENTRY_MODULE_NAME, None)
        raise _import_failure(error)
    return module


def _import_main():
    """No entry script: the reference imports `main` from sys.path (the app root)."""
    try:
        return importlib.import_module("main")
    except ModuleNotFoundError as error:
        if error.name == "main":
            raise Failure(
                "script_not_found",
                "No score script found. Expected score script main.py. Python path: {}".format(sys.path),
                error,
            )
        raise _import_failure(error)
    except BaseException as error:
        raise _import_failure(error)


def _import_failure(error):
    return Failure(
        "import_failed",
        "Failed to import user script because it raised an unhandled exception: {}".format(
            exception_summary(error)),
        error,
    )


# -- run()'s signature and decorators ----------------------------------------------


def _analyse_run(script, log):
    """Check run()'s signature and choose the input mode (and log it, as the reference does)."""
    try:
        parameters = list(inspect.signature(script.run).parameters.values())
    except (TypeError, ValueError) as error:
        raise Failure("bad_script", "run() cannot be inspected: {}".format(error), error)
    accepted_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if any(parameter.kind not in accepted_kinds for parameter in parameters):
        raise Failure("bad_script", "run() cannot accept positional-only arguments, *args, or **kwargs.")

    script.wants_request_headers = any(p.name == REQUEST_HEADERS_PARAMETER for p in parameters)
    inputs = [p for p in parameters if p.name != REQUEST_HEADERS_PARAMETER]
    if not inputs:
        if script.wants_request_headers:
            raise Failure("bad_script", 'run() needs to accept an argument other than "request_headers".')
        raise Failure("bad_script", "run() needs to accept an argument for input data.")

    is_rawhttp = aml_request.is_rawhttp_requested()
    is_schema = is_schema_decorated(script.run)
    if is_rawhttp and is_schema:
        raise Failure("bad_script", "run() cannot be decorated with both @rawhttp and @input_schema")
    if is_rawhttp:
        script.input_mode, script.input_parameter = RAWHTTP, inputs[0].name
        log.info(SCRIPT_LOGGER, "run() is decorated with @rawhttp. Server will invoke it with the flask request object.")
    elif is_schema:
        script.input_mode, script.schema_parameters = SCHEMA, inputs
        log.info(SCRIPT_LOGGER, "run() is decorated with @input_schema. Server will invoke it with the following"
                 " arguments: {}.".format(", ".join(p.name for p in inputs)))
    else:
        script.input_mode, script.input_parameter = PLAIN, inputs[0].name
        log.info(SCRIPT_LOGGER, "run() is not decorated. Server will invoke it with the input in JSON string.")


def _schema_util():
    """inference_schema.schema_util if the script imported inference-schema, else None.

    A script that uses the decorators has imported it; one that has not cannot be
    decorated, and importing it for nothing would only slow start-up.
    """
    return sys.modules.get("inference_schema.schema_util")


def is_schema_decorated(run):
    schema_util = _schema_util()
    if schema_util is None:
        return False
    try:
        return bool(schema_util.is_schema_decorated(run))
    except Exception:
        return False  # not a function inference-schema understands, so not decorated


def swagger_schemas(run):
    """ServiceInput/ServiceOutput per OpenAPI version, as PROTOCOL.md's `schemas`.

    Undecorated: null schemas (the server uses its default). A version the decorators'
    types cannot express (inference-schema says so) is null as a whole: the server
    then has no generated document for it, like the reference.
    """
    schema_util = _schema_util()
    if not is_schema_decorated(run):
        return {version: {"input": None, "output": None} for version in SWAGGER_VERSION_ALIASES}
    declared = {"input": schema_util.get_input_schema(run), "output": schema_util.get_output_schema(run)}
    supported = _supported_versions(schema_util, run)
    return {
        version: declared if supported is None or any(alias in supported for alias in aliases) else None
        for version, aliases in SWAGGER_VERSION_ALIASES.items()
    }


def _supported_versions(schema_util, run):
    get_supported_versions = getattr(schema_util, "get_supported_versions", None)
    if get_supported_versions is None:
        return None  # an inference-schema too old to say: all versions
    return set(get_supported_versions(run))
