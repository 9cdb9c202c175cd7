"""The `aml_request` module scoring scripts import (`from azureml.contrib.services.aml_request import rawhttp`).

The runner registers this one module object under both names the reference server
provides (`azureml.contrib.services.aml_request` and
`azureml_inference_server_http.api.aml_request`), so `@rawhttp` sets the same flag
whichever a script imports. As in the reference, the flag is global: once any function
is decorated, run() receives the request object.

`AMLRequest` (and `Request`) are created on first use, because the base class is
flask.Request when Flask is installed and importing Flask takes time.
"""

_rawHttpRequested = False

__all__ = ["rawhttp", "AMLRequest"]


def rawhttp(func):
    """Ask for run() to be called with the HTTP request object instead of the body."""
    global _rawHttpRequested
    _rawHttpRequested = True
    return func


def is_rawhttp_requested():
    return _rawHttpRequested


def make_aml_request_class(base=None):
    """AMLRequest on top of `base` (default: Flask's Request when installed)."""
    from .http import request_class

    base = base or request_class()
    return type("AMLRequest", (base,), {
        "__doc__": "The request object a @rawhttp run() receives (Flask's request API).",
        "__module__": __name__,
    })


def __getattr__(name):
    """Module attributes made on first access (PEP 562)."""
    if name == "AMLRequest":
        value = make_aml_request_class()
    elif name == "Request":
        from .http import request_class

        value = request_class()
    else:
        raise AttributeError("module {!r} has no attribute {!r}".format(__name__, name))
    globals()[name] = value
    return value
