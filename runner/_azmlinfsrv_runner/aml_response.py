"""The `aml_response` module scoring scripts import (`from azureml.contrib.services.aml_response import AMLResponse`).

Registered under `azureml.contrib.services.aml_response` and
`azureml_inference_server_http.api.aml_response`. `AMLResponse` subclasses
flask.Response when Flask is installed (else the stdlib stand-in) and is created on
first use, so scripts that never touch it don't pay for importing Flask.
"""

import json

__all__ = ["AMLResponse"]


class _AMLResponseBehaviour:
    """AMLResponse(message, status_code, response_headers={}, json_str=False, run_function_failed=False).

    - `message` None: the body is `{}` as JSON;
    - `json_str=True`: the body is json.dumps(message), Content-Type application/json;
    - otherwise the body is `message` (str, bytes or an iterable of them, streamed when
      it has no length) with Flask's default Content-Type unless the headers name one
      as exactly "Content-Type";
    - each value in `response_headers` is split on commas into repeated headers;
    - `x-ms-run-function-failed` carries `run_function_failed` (the server sets it to
      True anyway for a status of 500 or more).
    """

    def __init__(self, message, status_code, response_headers=None, json_str=False, run_function_failed=False):
        response_headers = {} if response_headers is None else response_headers
        if message is None or json_str:
            body = json.dumps({} if message is None else message)
            super().__init__(body, status=status_code, mimetype="application/json")
        else:
            super().__init__(message, status=status_code)
            if "Content-Type" in response_headers:
                # The loop below adds the script's own Content-Type.
                self.headers.remove("Content-Type")
        self.headers["x-ms-run-function-failed"] = run_function_failed
        for name, value in response_headers.items():
            for part in str(value).split(","):
                self.headers.add(name, part.strip())


def make_aml_response_class(base=None):
    """AMLResponse on top of `base` (default: Flask's Response when installed)."""
    from .http import response_class

    base = base or response_class()
    return type("AMLResponse", (_AMLResponseBehaviour, base), {
        "__doc__": _AMLResponseBehaviour.__doc__,
        "__module__": __name__,
    })


def __getattr__(name):
    """Module attributes made on first access (PEP 562)."""
    if name != "AMLResponse":
        raise AttributeError("module {!r} has no attribute {!r}".format(__name__, name))
    value = make_aml_response_class()
    globals()[name] = value
    return value
