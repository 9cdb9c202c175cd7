"""Turns a `score` request into run()'s keyword arguments, per input mode.

The rules are the reference server's (docs/contract.md, "How run() receives its input"):

- plain (undecorated): POST gives the body as UTF-8 text, GET the query string as a
  JSON object text;
- rawhttp: the request object (a real flask.Request when Flask is installed);
- schema (`@input_schema`): each parameter by name from a JSON object body (POST) or
  from the query string (GET), with the reference's 400/415 answers.

Which methods reach run() and how header names are spelled are the server's
decisions (PROTOCOL.md): every `score` frame is a call of run(), and its headers arrive
as werkzeug shows them (Title-Case names, repeats joined with ",", names with "_"
dropped). The runner uses them as they are: for `request_headers`, for the stand-in
request's `headers`, and to build the WSGI environ Flask needs.
"""

import inspect
import io
import json
import os
import sys
from urllib.parse import unquote_to_bytes

from .http import FORM_MIMETYPES, HEADERS_ENVIRON_KEY, parse_content_type, parse_query, request_class
from .script import PLAIN, RAWHTTP, REQUEST_HEADERS_PARAMETER, SCHEMA

BAD_INPUT = "bad_input"
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"


class InputError(Exception):
    """The request's input cannot be given to run(): `kind` says which HTTP answer."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


class ScoreRequest:
    """One HTTP request to /score, as the `score` frame describes it."""

    def __init__(self, method, path, query, headers, body, remote_addr=None):
        self.method = method.upper()
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.remote_addr = remote_addr
        self._environ = None
        self._header_environ = None

    @classmethod
    def from_frame(cls, params, payload):
        return cls(
            method=str(params.get("method") or "GET"),
            path=str(params.get("path") or "/score"),
            query=str(params.get("query") or ""),
            headers=[(str(name), str(value)) for name, value in params.get("headers") or []],
            body=payload,
            remote_addr=params.get("remote_addr"),
        )

    def wsgi_environ(self):
        """A WSGI environ for this request (made once: its body stream is read only once)."""
        if self._environ is None:
            self._environ = self._base_wsgi_environ()
            self._environ.update(self.header_environ())
            # The names as the server spelled them, for the stand-in request's `headers`
            # (Flask reads them back from the HTTP_* keys, which gives the same names).
            self._environ[HEADERS_ENVIRON_KEY] = self.headers
        return self._environ

    def _base_wsgi_environ(self):
        """The environ gunicorn would make, without the headers."""
        environ = {
            "REQUEST_METHOD": self.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(self.path).decode("latin-1"),
            "QUERY_STRING": self.query.encode("utf-8").decode("latin-1"),
            "RAW_URI": self.path + ("?" + self.query if self.query else ""),
            "SERVER_NAME": "0.0.0.0",
            "SERVER_PORT": os.environ.get("SERVER_PORT", "5001"),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(self.body),
            "wsgi.input_terminated": True,  # the whole body is here, chunked or not
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if self.remote_addr:
            environ["REMOTE_ADDR"] = str(self.remote_addr)
        return environ

    def header_environ(self):
        """The headers as WSGI environ entries, as gunicorn names them (made once).

        The server has already joined repeated headers, so each name comes once; should
        one come twice anyway, the last wins, as in a dict.
        """
        if self._header_environ is None:
            environ = {}
            for name, value in self.headers:
                key = environ_key(name)
                environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
            self._header_environ = environ
        return self._header_environ

    def header_dict(self):
        """The `request_headers` argument: the headers as the server sent them, as a dict."""
        return dict(self.headers)

    @property
    def content_type(self):
        return self.header_environ().get("CONTENT_TYPE")


def environ_key(name):
    """`Content-Type` -> `CONTENT_TYPE`: a header name as a WSGI environ key (without HTTP_)."""
    return name.upper().replace("-", "_")


def run_arguments(script, request):
    """run()'s keyword arguments for `request`; raises InputError.

    Whatever the method: the server only sends the methods that reach run() (GET and
    POST; also OPTIONS and HEAD for @rawhttp), and anything but GET gives the body.
    """
    if script.input_mode == RAWHTTP:
        arguments = {script.input_parameter: request_class()(request.wsgi_environ())}
    elif script.input_mode == SCHEMA:
        arguments = _schema_arguments(script.schema_parameters, request)
    elif script.input_mode == PLAIN:
        arguments = {script.input_parameter: _plain_input(request)}
    else:
        raise ValueError("unknown input mode {!r}".format(script.input_mode))
    if script.wants_request_headers:
        arguments[REQUEST_HEADERS_PARAMETER] = request.header_dict()
    return arguments


def argument_builder(script):
    """The function that turns a `score` frame's (params, payload) into run()'s arguments.

    Chosen once per script. Like run_arguments(), it raises InputError.
    """

    def any_request(params, payload):
        return run_arguments(script, ScoreRequest.from_frame(params, payload))

    if script.input_mode != PLAIN or script.wants_request_headers:
        return any_request
    parameter = script.input_parameter

    def plain_post(params, payload):
        # The usual request, on every request: an undecorated run() given a POST body
        # needs the body and the Content-Type (a form body is not given), nothing else,
        # so the request object is not built. Anything unusual takes the general path.
        headers = params.get("headers")
        if params.get("method") != "POST" or headers.__class__ is not list:
            return any_request(params, payload)
        content_type = None
        try:
            for name, value in headers:
                # The name that header_environ() makes CONTENT_TYPE (the length test
                # first: it is cheap and rules out most names); the last one wins there too.
                if len(name) == 12 and environ_key(name) == "CONTENT_TYPE":
                    content_type = value
        except (AttributeError, TypeError, ValueError):
            return any_request(params, payload)  # a header that is not a pair of strings
        if content_type is not None and content_type.__class__ is not str:
            return any_request(params, payload)
        return {parameter: _plain_body_text(_flask_data(payload, content_type))}

    return plain_post


# -- plain ----------------------------------------------------------------------------


def _plain_input(request):
    if request.method == "GET":
        return json.dumps(query_as_object(request.query))
    return _plain_body_text(_flask_data(request.body, request.content_type))


def _plain_body_text(data):
    try:
        return str(data, "utf-8")
    except UnicodeDecodeError as error:
        raise InputError(BAD_INPUT, "Input cannot be decoded as UTF-8: {}".format(error))


def _flask_data(body, content_type):
    """What `flask.request.data` holds: nothing for a form body, which Flask parses away."""
    if not content_type or "form" not in content_type.lower():
        return body  # not a form mimetype (both have "form" in their name): no need to parse it
    mimetype, params = parse_content_type(content_type)
    is_parsed_form = mimetype in FORM_MIMETYPES and (mimetype != "multipart/form-data" or params.get("boundary"))
    return b"" if is_parsed_form else body


def query_as_object(query):
    """The query parameters as the reference gives them to run(): a dict of JSON values.

    Each value is parsed as JSON when it parses and kept as a string otherwise; a name
    given more than once maps to the list of its values, in order.
    """
    values_by_name = {}
    for name, value in parse_query(query):
        values_by_name.setdefault(name, []).append(_json_or_text(value))
    return {name: values[0] if len(values) == 1 else values for name, values in values_by_name.items()}


def _json_or_text(value):
    try:
        return json.loads(value)
    except ValueError:
        return value


# -- @input_schema --------------------------------------------------------------------


def _schema_arguments(parameters, request):
    if request.method == "GET":
        return _pick_parameters(parameters, query_as_object(request.query))
    if not is_json_mimetype(parse_content_type(request.content_type)[0]):
        raise InputError(UNSUPPORTED_MEDIA_TYPE, "Expects Content-Type to be application/json")
    try:
        # bytes, as the reference passes them: json detects UTF-16/32, and a body that
        # is no Unicode at all raises UnicodeDecodeError, an internal error there too.
        body = json.loads(request.body)
    except json.JSONDecodeError as error:
        if request.body:
            raise InputError(BAD_INPUT, "POST body could not be decoded as JSON: {}".format(error))
        raise InputError(BAD_INPUT, "POST body is empty. Expecting a JSON dictionary.")
    if not isinstance(body, dict):
        raise InputError(BAD_INPUT, "POST body should be a JSON dictionary.")
    return _pick_parameters(parameters, body)


def is_json_mimetype(mimetype):
    """application/json or application/*+json (already lower-cased, without parameters)."""
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def _pick_parameters(parameters, values):
    arguments = {}
    for parameter in parameters:
        value = values.get(parameter.name, parameter.default)
        if value is inspect.Parameter.empty:
            raise InputError(BAD_INPUT, "A value is not provided for the {!r} parameter.".format(parameter.name))
        arguments[parameter.name] = value
    return arguments
