"""Werkzeug-like containers (and the HTTP errors their lookups raise), stdlib only.

Used when the scoring script's environment has no Flask/werkzeug: `@rawhttp` scripts
still get `request.args.get("k", type=int)`, `request.headers["X-Thing"]`,
`request.files["f"].save(...)` and friends, with werkzeug's semantics.
"""

import email.message
import io
import shutil


class HTTPException(Exception):
    """An error that werkzeug would turn into an HTTP response."""

    code = 500
    description = "Internal Server Error"

    def __init__(self, description=None):
        if description is not None:
            self.description = description
        super().__init__("{} {}: {}".format(self.code, self.name, self.description))

    @property
    def name(self):
        return {400: "Bad Request", 415: "Unsupported Media Type"}.get(self.code, "Error")


class BadRequest(HTTPException):
    code = 400
    description = "The browser (or proxy) sent a request that this server could not understand."


class UnsupportedMediaType(HTTPException):
    code = 415
    description = "The server does not support the media type transmitted in the request."


class BadRequestKeyError(BadRequest, KeyError):
    """A missing key in request data: both a KeyError and a 400, as in werkzeug."""

    def __init__(self, key):
        BadRequest.__init__(self)
        self.args = (key,)

    def __str__(self):
        return "400 Bad Request: {!r}".format(self.args[0])


def _convert(value, type, default):
    """werkzeug's `type=` argument: a failed conversion gives the default."""
    if type is None:
        return value
    try:
        return type(value)
    except (ValueError, TypeError):
        return default


class MultiDict:
    """An ordered mapping where a key may have several values (werkzeug's MultiDict).

    Plain lookups give the first value; `getlist` gives all of them.
    """

    def __init__(self, pairs=()):
        self._lists = {}
        items = pairs.items() if isinstance(pairs, dict) else pairs
        for key, value in items:
            self.add(key, value)

    def add(self, key, value):
        self._lists.setdefault(key, []).append(value)

    def setlist(self, key, values):
        self._lists[key] = list(values)

    def __getitem__(self, key):
        if key in self._lists and self._lists[key]:
            return self._lists[key][0]
        raise BadRequestKeyError(key)

    def __setitem__(self, key, value):
        self._lists[key] = [value]

    def __delitem__(self, key):
        del self._lists[key]

    def get(self, key, default=None, type=None):
        values = self._lists.get(key)
        if not values:
            return default
        return _convert(values[0], type, default)

    def getlist(self, key, type=None):
        values = self._lists.get(key, [])
        if type is None:
            return list(values)
        converted = []
        for value in values:
            try:
                converted.append(type(value))
            except (ValueError, TypeError):
                pass
        return converted

    def __contains__(self, key):
        return key in self._lists

    def __iter__(self):
        return iter(self._lists)

    def __len__(self):
        return len(self._lists)

    def __bool__(self):
        return bool(self._lists)

    def keys(self):
        return self._lists.keys()

    def values(self):
        return [values[0] for values in self._lists.values()]

    def listvalues(self):
        return [list(values) for values in self._lists.values()]

    def items(self, multi=False):
        if multi:
            return [(key, value) for key, values in self._lists.items() for value in values]
        return [(key, values[0]) for key, values in self._lists.items()]

    def lists(self):
        return [(key, list(values)) for key, values in self._lists.items()]

    def to_dict(self, flat=True):
        if flat:
            return dict(self.items())
        return dict(self.lists())

    def copy(self):
        return MultiDict(self.items(multi=True))

    def __eq__(self, other):
        if isinstance(other, MultiDict):
            return self.lists() == other.lists()
        if isinstance(other, dict):
            return self.to_dict() == other
        return NotImplemented

    def __repr__(self):
        return "{}({!r})".format(type(self).__name__, self.items(multi=True))


class Headers:
    """HTTP headers: an ordered list of (name, value), looked up case-insensitively."""

    def __init__(self, pairs=()):
        self._pairs = []
        items = pairs.items() if isinstance(pairs, dict) else pairs
        for name, value in items:
            self.add(name, value)

    # -- reading -------------------------------------------------------------------

    def get(self, name, default=None, type=None):
        lowered = name.lower()
        for key, value in self._pairs:
            if key.lower() == lowered:
                return _convert(value, type, default)
        return default

    def getlist(self, name, type=None):
        lowered = name.lower()
        values = [value for key, value in self._pairs if key.lower() == lowered]
        if type is None:
            return values
        return [converted for converted in (_convert(v, type, None) for v in values) if converted is not None]

    get_all = getlist

    def __getitem__(self, name):
        if isinstance(name, int):
            return self._pairs[name]
        value = self.get(name)
        if value is None:
            raise BadRequestKeyError(name)
        return value

    def __contains__(self, name):
        lowered = name.lower()
        return any(key.lower() == lowered for key, _ in self._pairs)

    def __iter__(self):
        return iter(list(self._pairs))

    def __len__(self):
        return len(self._pairs)

    def __bool__(self):
        return bool(self._pairs)

    def items(self, lower=False):
        return [(key.lower() if lower else key, value) for key, value in self._pairs]

    def keys(self, lower=False):
        return [key.lower() if lower else key for key, _ in self._pairs]

    def values(self):
        return [value for _, value in self._pairs]

    def to_wsgi_list(self):
        return list(self._pairs)

    def copy(self):
        return Headers(self._pairs)

    def __eq__(self, other):
        if isinstance(other, Headers):
            return self.items(lower=True) == other.items(lower=True)
        return NotImplemented

    def __str__(self):
        return "".join("{}: {}\r\n".format(key, value) for key, value in self._pairs) + "\r\n"

    def __repr__(self):
        return "{}({!r})".format(type(self).__name__, self._pairs)

    # -- writing -------------------------------------------------------------------

    def add(self, name, value, **params):
        self._check_mutable()
        self._pairs.append((str(name), _header_value(value, params)))

    add_header = add

    def set(self, name, value, **params):
        self._check_mutable()
        value = _header_value(value, params)
        lowered = name.lower()
        for index, (key, _) in enumerate(self._pairs):
            if key.lower() == lowered:
                self._pairs[index] = (key, value)
                self._pairs = [
                    pair for position, pair in enumerate(self._pairs)
                    if position <= index or pair[0].lower() != lowered
                ]
                return
        self._pairs.append((str(name), value))

    def __setitem__(self, name, value):
        self.set(name, value)

    def setdefault(self, name, default):
        if name in self:
            return self[name]
        self.set(name, default)
        return self[name]

    def remove(self, name):
        self._check_mutable()
        lowered = name.lower()
        self._pairs = [pair for pair in self._pairs if pair[0].lower() != lowered]

    def __delitem__(self, name):
        self.remove(name)

    def pop(self, name, default=None):
        value = self.get(name, default)
        if name in self:
            self.remove(name)
        return value

    def extend(self, pairs=(), **kwargs):
        items = pairs.items() if isinstance(pairs, dict) else pairs
        for name, value in list(items) + list(kwargs.items()):
            self.add(name, value)

    def clear(self):
        self._check_mutable()
        self._pairs = []

    def _check_mutable(self):
        pass


class EnvironHeaders(Headers):
    """A request's headers: read-only, like werkzeug's EnvironHeaders."""

    def __init__(self, pairs=()):
        super().__init__()
        self._pairs = [(str(name), str(value)) for name, value in pairs]

    def _check_mutable(self):
        raise TypeError("request headers are immutable")


def parse_content_type(value):
    """(mimetype, params) of a Content-Type value: `text/plain`, `{"charset": "UTF-8"}`.

    The mimetype is lower-cased and stripped, parameter names are lower-cased and
    values unquoted, as werkzeug's `mimetype` and `mimetype_params` give them.
    """
    if not value:
        return "", {}
    mimetype = value.split(";", 1)[0].strip().lower()
    if ";" not in value:
        return mimetype, {}
    message = email.message.Message()
    message["Content-Type"] = value
    params = message.get_params(header="Content-Type") or []
    return mimetype, {key: str(param) for key, param in params[1:] if key}


class MimetypeProperties:
    """`mimetype` and `mimetype_params` derived from a `content_type` property, as both
    werkzeug's requests and its uploaded files offer them."""

    @property
    def mimetype(self):
        return parse_content_type(self.content_type)[0]

    @property
    def mimetype_params(self):
        return parse_content_type(self.content_type)[1]


def _header_value(value, params):
    """A header value as werkzeug stores it: str, with `; key=value` params, no newlines."""
    text = str(value)
    for key, param in params.items():
        text += "; {}={}".format(key.replace("_", "-"), param)
    if "\n" in text or "\r" in text:
        raise ValueError("Header values must not contain newline characters.")
    return text


class FileStorage(MimetypeProperties):
    """An uploaded file from a multipart/form-data body (werkzeug's FileStorage)."""

    def __init__(self, stream=None, filename=None, name=None, content_type=None, headers=None):
        self.stream = stream if stream is not None else io.BytesIO()
        self.filename = filename
        self.name = name
        self.headers = headers if headers is not None else Headers()
        if content_type is not None and "Content-Type" not in self.headers:
            self.headers.add("Content-Type", content_type)

    @property
    def content_type(self):
        return self.headers.get("Content-Type")

    @property
    def content_length(self):
        return int(self.headers.get("Content-Length") or 0)

    def read(self, *args):
        return self.stream.read(*args)

    def readline(self, *args):
        return self.stream.readline(*args)

    def seek(self, *args):
        return self.stream.seek(*args)

    def tell(self):
        return self.stream.tell()

    def __iter__(self):
        return iter(self.stream)

    def save(self, destination, buffer_size=16384):
        """Write the upload to a path or a binary file object."""
        if isinstance(destination, (str, bytes)) or hasattr(destination, "__fspath__"):
            with open(destination, "wb") as target:
                shutil.copyfileobj(self.stream, target, buffer_size)
        else:
            shutil.copyfileobj(self.stream, destination, buffer_size)

    def close(self):
        self.stream.close()

    def __bool__(self):
        return bool(self.filename)

    def __repr__(self):
        return "<FileStorage: {!r} ({!r})>".format(self.filename, self.content_type)
