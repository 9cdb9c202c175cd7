"""Flask-compatible request and response objects for `@rawhttp` scripts.

When the script's environment has Flask (or at least werkzeug), the runner uses the
real classes, so a script behaves exactly as it did under the reference server:
`request_class()` and `response_class()` pick them. Otherwise the stdlib stand-ins
below provide the part of Flask's API that scoring scripts use, with werkzeug's
semantics (e.g. `request.data` is empty once a form body has been parsed,
`get_json()` raises a 415 for a non-JSON content type).
"""

import codecs
import email.message
import email.utils
import http
import importlib
import io
import json
from urllib.parse import quote, unquote

from .datastructures import (
    BadRequest,
    EnvironHeaders,
    FileStorage,
    Headers,
    MimetypeProperties,
    MultiDict,
    UnsupportedMediaType,
    parse_content_type,
)

FORM_MIMETYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

# The environ entry holding the request's (name, value) headers as the server spelled
# them (a dotted key, as WSGI reserves for servers' own entries).
HEADERS_ENVIRON_KEY = "azmlinfsrv.headers"


# -- choosing the real classes when they exist --------------------------------------


_chosen_classes = {}


def request_class():
    """flask.Request, else werkzeug's Request, else the stand-in below."""
    return _first_importable("request", ("flask", "Request"), ("werkzeug.wrappers", "Request"), Request)


def response_class():
    """flask.Response, else werkzeug's Response, else the stand-in below."""
    return _first_importable("response", ("flask", "Response"), ("werkzeug.wrappers", "Response"), Response)


def _first_importable(role, *candidates):
    """The first of (module, attribute) candidates that imports; the last is the fallback class.

    Chosen once per process: importing Flask takes a while and must not be paid per request.
    """
    if role not in _chosen_classes:
        *importable, fallback = candidates
        chosen = fallback
        for module_name, attribute in importable:
            try:
                chosen = getattr(importlib.import_module(module_name), attribute)
                break
            except Exception:
                continue
        _chosen_classes[role] = chosen
    return _chosen_classes[role]


# -- URL-encoded data ---------------------------------------------------------------


def _requote_undecodable(error):
    """Codec error handler: keep bytes that are not UTF-8 percent-encoded (`%FF`)."""
    return quote(error.object[error.start:error.end], safe=""), error.end


codecs.register_error("azmlinf.requote", _requote_undecodable)


def parse_query(query):
    """Pairs of a query string or urlencoded body, as werkzeug parses them.

    Only `&` separates pairs, `+` is a space, a name without `=` has the value "",
    empty pieces are skipped, and escapes that are not UTF-8 stay as they were.
    """
    pairs = []
    for piece in query.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        pairs.append((_unquote_plus(name), _unquote_plus(value)))
    return pairs


def _unquote_plus(text):
    return unquote(text.replace("+", " "), "utf-8", "azmlinf.requote")


# -- multipart/form-data ------------------------------------------------------------


def parse_multipart(body, boundary):
    """(fields, files) of a multipart/form-data body: lists of (name, value) pairs.

    A part with a `filename` is a file (FileStorage), any other part a text field.
    """
    fields, files = [], []
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    for part in (b"\r\n" + body).split(delimiter)[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        head, separator, content = part.partition(b"\r\n\r\n")
        if not separator:
            continue
        headers = _part_headers(head)
        disposition = headers.get("Content-Disposition", "")
        name, filename = _disposition_names(disposition)
        if name is None:
            continue
        if filename is None:
            fields.append((name, content.decode("utf-8", "replace")))
        else:
            files.append((name, FileStorage(io.BytesIO(content), filename, name, headers=headers)))
    return fields, files


def _part_headers(head):
    headers = Headers()
    for line in head.decode("utf-8", "replace").split("\r\n"):
        name, separator, value = line.partition(":")
        if separator and name.strip():
            headers.add(name.strip(), value.strip())
    return headers


def _disposition_names(disposition):
    """(name, filename) from a Content-Disposition value; None where absent."""
    message = email.message.Message()
    message["Content-Disposition"] = disposition
    name = message.get_param("name", header="Content-Disposition")
    filename = message.get_param("filename", header="Content-Disposition")
    return (
        None if name is None else str(email.utils.collapse_rfc2231_value(name)),
        None if filename is None else str(email.utils.collapse_rfc2231_value(filename)),
    )


# -- the request --------------------------------------------------------------------


class _UserAgent(str):
    """The User-Agent header; `.string` as on werkzeug's UserAgent."""

    @property
    def string(self):
        return str(self)


class Request(MimetypeProperties):
    """A WSGI request with Flask's request API, for environments without Flask."""

    def __init__(self, environ):
        self.environ = environ
        self.stream = environ["wsgi.input"]
        self._cached_data = None
        self._form_and_files = None
        self._cached_json = {}
        self._headers = None
        self._args = None

    def __repr__(self):
        return "<Request {!r} [{}]>".format(self.url, self.method)

    # -- where the request went ----------------------------------------------------

    @property
    def method(self):
        return self.environ.get("REQUEST_METHOD", "GET").upper()

    @property
    def scheme(self):
        return self.environ.get("wsgi.url_scheme", "http")

    @property
    def is_secure(self):
        return self.scheme == "https"

    @property
    def root_path(self):
        return _from_wsgi_string(self.environ.get("SCRIPT_NAME", "")).rstrip("/")

    @property
    def path(self):
        return "/" + _from_wsgi_string(self.environ.get("PATH_INFO", "")).lstrip("/")

    @property
    def query_string(self):
        return self.environ.get("QUERY_STRING", "").encode("latin-1")

    @property
    def full_path(self):
        return "{}?{}".format(self.path, self.query_string.decode())

    @property
    def host(self):
        host = self.environ.get("HTTP_HOST")
        if host:
            return host
        name, port = self.environ.get("SERVER_NAME", "localhost"), self.environ.get("SERVER_PORT", "")
        default_port = "443" if self.is_secure else "80"
        return name if not port or port == default_port else "{}:{}".format(name, port)

    @property
    def host_url(self):
        return "{}://{}/".format(self.scheme, self.host)

    @property
    def url_root(self):
        return "{}://{}{}/".format(self.scheme, self.host, quote(self.root_path))

    @property
    def base_url(self):
        return "{}://{}{}{}".format(self.scheme, self.host, quote(self.root_path), quote(self.path))

    @property
    def url(self):
        query = self.query_string.decode()
        return self.base_url + ("?" + query if query else "")

    @property
    def remote_addr(self):
        return self.environ.get("REMOTE_ADDR")

    @property
    def access_route(self):
        return [self.remote_addr] if self.remote_addr else []

    # -- headers ---------------------------------------------------------------------

    @property
    def headers(self):
        if self._headers is None:
            pairs = self.environ.get(HEADERS_ENVIRON_KEY)
            if pairs is None:
                # An environ the runner did not make (a script building its own request).
                pairs = environ_header_pairs(self.environ)
            self._headers = EnvironHeaders(pairs)
        return self._headers

    @property
    def args(self):
        if self._args is None:
            self._args = MultiDict(parse_query(self.query_string.decode()))
        return self._args

    @property
    def cookies(self):
        return MultiDict(_parse_cookie_header(self.environ.get("HTTP_COOKIE", "")))

    @property
    def user_agent(self):
        return _UserAgent(self.environ.get("HTTP_USER_AGENT", ""))

    @property
    def content_type(self):
        return self.environ.get("CONTENT_TYPE")

    @property
    def content_length(self):
        try:
            return max(0, int(self.environ.get("CONTENT_LENGTH", "")))
        except ValueError:
            return None

    @property
    def content_encoding(self):
        return self.environ.get("HTTP_CONTENT_ENCODING")

    @property
    def is_json(self):
        mimetype = self.mimetype
        return mimetype == "application/json" or (
            mimetype.startswith("application/") and mimetype.endswith("+json")
        )

    # -- the body --------------------------------------------------------------------

    def get_data(self, cache=True, as_text=False, parse_form_data=False):
        """The raw body; empty if a form body was parsed first (as with werkzeug)."""
        if self._cached_data is None:
            if parse_form_data:
                self._load_form_data()
            data = self.stream.read()
            if cache:
                self._cached_data = data
        else:
            data = self._cached_data
        return data.decode("utf-8", "replace") if as_text else data

    @property
    def data(self):
        return self.get_data(parse_form_data=True)

    @property
    def input_stream(self):
        return self.environ["wsgi.input"]

    @property
    def form(self):
        return self._load_form_data()[0]

    @property
    def files(self):
        return self._load_form_data()[1]

    @property
    def values(self):
        combined = self.args.copy()
        if self.method != "GET":
            for key, value in self.form.items(multi=True):
                combined.add(key, value)
        return combined

    def _load_form_data(self):
        """Parse a form body once; reading it consumes the stream, as in werkzeug."""
        if self._form_and_files is None:
            fields, files = [], []
            mimetype, params = parse_content_type(self.content_type)
            if mimetype in FORM_MIMETYPES and (mimetype != "multipart/form-data" or params.get("boundary")):
                stream = io.BytesIO(self._cached_data) if self._cached_data is not None else self.stream
                body = stream.read()
                if mimetype == "multipart/form-data":
                    fields, files = parse_multipart(body, params["boundary"])
                else:
                    fields = parse_query(body.decode("utf-8", "replace"))
            self._form_and_files = (MultiDict(fields), MultiDict(files))
        return self._form_and_files

    def get_json(self, force=False, silent=False, cache=True):
        """The body parsed as JSON, with werkzeug's errors (415, 400) and caching."""
        if cache and silent in self._cached_json:
            return self._cached_json[silent]
        if not (force or self.is_json):
            if silent:
                return None
            raise UnsupportedMediaType(
                "Did not attempt to load JSON data because the request Content-Type was not"
                " 'application/json'."
            )
        try:
            value = json.loads(self.get_data(cache=cache))
        except ValueError as error:
            if not silent:
                raise BadRequest("Failed to decode JSON object: {}".format(error))
            value = None
            if cache:
                self._cached_json[True] = None
            return value
        if cache:
            self._cached_json = {True: value, False: value}
        return value

    @property
    def json(self):
        return self.get_json()

    def close(self):
        for _, upload in self.files.items(multi=True):
            upload.close()


def environ_header_pairs(environ):
    """The (Name, value) headers of a WSGI environ the runner did not make, named as werkzeug names them.

    Requests from the server carry their header names under HEADERS_ENVIRON_KEY instead.
    """
    pairs = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            pairs.append((key[5:].replace("_", "-").title(), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            pairs.append((key.replace("_", "-").title(), value))
    return pairs


def _from_wsgi_string(text):
    """WSGI strings carry bytes as latin-1; the request API shows them as UTF-8."""
    return text.encode("latin-1").decode("utf-8", "replace")


def _parse_cookie_header(header):
    pairs = []
    for piece in header.split(";"):
        name, separator, value = piece.strip().partition("=")
        if not separator or not name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        pairs.append((name.strip(), value))
    return pairs


# -- the response -------------------------------------------------------------------

# Reason phrases that Python 3.8's http.HTTPStatus lacks.
_EXTRA_REASON_PHRASES = {418: "I'm a teapot", 425: "Too Early"}

_CHARSET_MIMETYPES = {
    "application/ecmascript",
    "application/javascript",
    "application/sql",
    "application/xml",
    "application/xml-dtd",
    "application/xml-external-parsed-entity",
}


def content_type_for(mimetype):
    """A mimetype with `; charset=utf-8` added where werkzeug adds it."""
    if mimetype.startswith("text/") or mimetype in _CHARSET_MIMETYPES or mimetype.endswith("+xml"):
        return mimetype + "; charset=utf-8"
    return mimetype


class Response:
    """An HTTP response with werkzeug's Response API, for environments without Flask.

    A str/bytes body is stored as is; any other iterable is the body's chunks, and
    one without a length (a generator) is streamed.
    """

    default_mimetype = "text/html"

    def __init__(self, response=None, status=None, headers=None, mimetype=None, content_type=None,
                 direct_passthrough=False):
        self.headers = headers if isinstance(headers, Headers) else Headers(headers or ())
        if content_type is None:
            if mimetype is None and "Content-Type" not in self.headers:
                mimetype = self.default_mimetype
            if mimetype is not None:
                content_type = content_type_for(mimetype)
        if content_type is not None:
            self.headers["Content-Type"] = content_type
        self.status = 200 if status is None else status
        if response is None:
            self.response = []
        elif isinstance(response, (str, bytes, bytearray)):
            self.set_data(response)
        else:
            self.response = response

    def __repr__(self):
        body = "{} bytes".format(len(self.get_data())) if self.is_sequence else "streamed"
        return "<{} {} [{}]>".format(type(self).__name__, body, self.status)

    # -- status ----------------------------------------------------------------------

    @property
    def status_code(self):
        return self._status_code

    @status_code.setter
    def status_code(self, code):
        self.status = int(code)

    @property
    def status(self):
        return self._status

    @status.setter
    def status(self, value):
        if isinstance(value, int):
            try:
                phrase = http.HTTPStatus(value).phrase
            except ValueError:
                phrase = _EXTRA_REASON_PHRASES.get(value, "unknown")
            self._status_code, self._status = value, "{} {}".format(value, phrase.upper())
        else:
            text = str(value).strip()
            code = text.split(None, 1)[0]
            self._status_code, self._status = int(code), text

    # -- headers -----------------------------------------------------------------------

    @property
    def content_type(self):
        return self.headers.get("Content-Type")

    @content_type.setter
    def content_type(self, value):
        self.headers["Content-Type"] = value

    @property
    def mimetype(self):
        return parse_content_type(self.content_type)[0]

    @mimetype.setter
    def mimetype(self, value):
        self.headers["Content-Type"] = content_type_for(value)

    @property
    def content_length(self):
        value = self.headers.get("Content-Length")
        return int(value) if value else None

    def set_cookie(self, key, value="", max_age=None, expires=None, path="/", domain=None,
                   secure=False, httponly=False, samesite=None):
        attributes = ["{}={}".format(key, value)]
        if max_age is not None:
            attributes.append("Max-Age={}".format(int(max_age)))
        if expires is not None:
            attributes.append("Expires={}".format(expires))
        if domain:
            attributes.append("Domain={}".format(domain))
        if path:
            attributes.append("Path={}".format(path))
        if secure:
            attributes.append("Secure")
        if httponly:
            attributes.append("HttpOnly")
        if samesite:
            attributes.append("SameSite={}".format(samesite))
        self.headers.add("Set-Cookie", "; ".join(attributes))

    def delete_cookie(self, key, path="/", domain=None):
        self.set_cookie(key, max_age=0, expires="Thu, 01 Jan 1970 00:00:00 GMT", path=path, domain=domain)

    # -- body --------------------------------------------------------------------------

    @property
    def is_sequence(self):
        return isinstance(self.response, (list, tuple))

    @property
    def is_streamed(self):
        try:
            len(self.response)
        except (TypeError, AttributeError):
            return True
        return False

    def iter_encoded(self):
        for chunk in self.response:
            yield encode_chunk(chunk)

    def get_data(self, as_text=False):
        if not self.is_sequence:
            self.response = list(self.iter_encoded())
        data = b"".join(encode_chunk(chunk) for chunk in self.response)
        return data.decode("utf-8", "replace") if as_text else data

    def set_data(self, value):
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        self.response = [data]
        self.headers["Content-Length"] = str(len(data))

    data = property(get_data, set_data)

    def close(self):
        close = getattr(self.response, "close", None)
        if callable(close):
            close()


def encode_chunk(chunk):
    """One body chunk as bytes: str is UTF-8 encoded, bytes-like taken as is."""
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError("a response body chunk must be str or bytes, not {}".format(type(chunk).__name__))
