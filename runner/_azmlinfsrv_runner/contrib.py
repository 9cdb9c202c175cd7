"""Provides `azureml.contrib.services.aml_request` / `aml_response` and their twins.

Scoring scripts written for the reference server import
`azureml.contrib.services.aml_request` (or `azureml_inference_server_http.api.aml_request`)
and the matching `aml_response`. The runner always serves its own modules under these
names, even when the real packages are installed, as the reference does by patching
`sys.modules`.

A real `azureml` (or `azureml.contrib`) package in the user's environment is kept, so
`import azureml.core` still works; only missing parents are created, as empty packages
that can still find real submodules on disk.
"""

import importlib
import importlib.util
import sys
import types

from . import aml_request
from . import aml_response

_ALIASES = {
    "azureml.contrib.services.aml_request": aml_request,
    "azureml.contrib.services.aml_response": aml_response,
    "azureml_inference_server_http.api.aml_request": aml_request,
    "azureml_inference_server_http.api.aml_response": aml_response,
}

# Parents that are imported for real when they exist: namespace packages shared with
# the user's other azureml packages.
_KEEP_REAL_PARENTS = ("azureml", "azureml.contrib")


def install_contrib_modules():
    """Register the runner's aml_request / aml_response under the reference's names."""
    for dotted_name, module in _ALIASES.items():
        parent_name, _, child_name = dotted_name.rpartition(".")
        parent = _ensure_package(parent_name)
        sys.modules[dotted_name] = module
        setattr(parent, child_name, module)


def _ensure_package(dotted_name):
    """The package module `dotted_name`, imported or made empty, linked to its parent."""
    existing = sys.modules.get(dotted_name)
    if existing is not None:
        return existing
    parent_name, _, child_name = dotted_name.rpartition(".")
    parent = _ensure_package(parent_name) if parent_name else None
    package = _import_real(dotted_name) if dotted_name in _KEEP_REAL_PARENTS else None
    if package is None:
        package = _empty_package(dotted_name, _search_locations(dotted_name, parent))
        sys.modules[dotted_name] = package
    if parent is not None:
        setattr(parent, child_name, package)
    return package


def _import_real(dotted_name):
    try:
        return importlib.import_module(dotted_name)
    except Exception:
        return None


def _search_locations(dotted_name, parent):
    """Where the real package would live, without running its __init__."""
    if parent is not None and not getattr(parent, "__path__", None):
        return []
    try:
        spec = importlib.util.find_spec(dotted_name)
    except Exception:
        return []
    if spec is None or spec.submodule_search_locations is None:
        return []
    return list(spec.submodule_search_locations)


def _empty_package(dotted_name, search_locations):
    package = types.ModuleType(dotted_name, "Provided by the azmlinfsrv runner.")
    package.__path__ = search_locations
    package.__package__ = dotted_name
    package.__spec__ = importlib.util.spec_from_loader(dotted_name, loader=None, is_package=True)
    package.__spec__.submodule_search_locations = search_locations
    return package
