"""Turns what run() returned into the `score` result: status, headers and body.

As in the reference server:

- a response object (AMLResponse, flask.Response, or anything with `status_code`,
  `headers` and a body) is sent as it is; a status of 500 or more marks the run as
  failed, and an `x-ms-run-function-failed` header the object carries gives the flag
  otherwise (a plain flask.Response has none: the flag is then left out);
- anything else is `json.dumps`ed with Python's defaults (`None` becomes `{}`), as
  `application/json` with status 200.

A body without a length (a generator) is streamed chunk by chunk.
"""

import json
import json.encoder

from .http import encode_chunk

RUN_FAILED_HEADER = "x-ms-run-function-failed"

# The server frames the body itself, so these never travel in a result.
_FRAMING_HEADERS = ("content-length", "transfer-encoding")


class NotSerializable(Exception):
    """run()'s result could not be turned into a response body."""


class EncodedResponse:
    """A response ready for the `score` result frame."""

    def __init__(self, status, headers, body=b"", chunks=None, run_failed=None, close=None):
        self.status = status
        self.headers = headers  # [[name, value], ...] in order, repeats kept
        self.body = body
        self.chunks = chunks  # an iterator of bytes when streaming, else None
        self.run_failed = run_failed  # True / False / None (leave the header out)
        self.run_ms = None
        self.close = close or _nothing_to_close

    @property
    def is_streaming(self):
        return self.chunks is not None


def _nothing_to_close():
    pass


def _make_json_dumps():
    """A function that returns json.dumps(value) (all defaults), for the main thread.

    json.dumps() sets up a new C encoder on every call, which costs more than encoding
    a small result. This one is set up once, from json's own default encoder, and used
    as long as none of what json.dumps() goes through has been replaced (a script may
    patch JSONEncoder.default, or json.dumps itself). Otherwise, and whenever the
    encoding fails (so that the error and its traceback are json.dumps()'s own), it
    calls json.dumps().
    """
    encoder_module = json.encoder
    default_encoder = json._default_encoder
    hooks = (json.dumps, default_encoder, json.JSONEncoder.default, json.JSONEncoder.encode,
             json.JSONEncoder.iterencode, encoder_module.c_make_encoder, encoder_module.encode_basestring_ascii)
    markers = {}  # what the C encoder uses to detect cycles; empty again after each success
    try:
        encode = encoder_module.c_make_encoder(
            markers, default_encoder.default, encoder_module.encode_basestring_ascii, default_encoder.indent,
            default_encoder.key_separator, default_encoder.item_separator, default_encoder.sort_keys,
            default_encoder.skipkeys, default_encoder.allow_nan)
    except Exception:
        encode = None  # no C encoder in this Python, or one made differently
    join = "".join

    def dumps(value):
        if (
            json.dumps is hooks[0]
            and json._default_encoder is hooks[1]
            and json.JSONEncoder.default is hooks[2]
            and json.JSONEncoder.encode is hooks[3]
            and json.JSONEncoder.iterencode is hooks[4]
            and encoder_module.c_make_encoder is hooks[5]
            and encoder_module.encode_basestring_ascii is hooks[6]
            and encode is not None
        ):
            try:
                return join(encode(value, 0))
            except Exception:
                markers.clear()  # a failed encoding may leave entries, which would read as cycles
            except BaseException:
                markers.clear()
                raise
        return json.dumps(value)

    sample = {"text": "caf\u00e9 \"q\"\n", "list": [1, 2.5, -0.0, 1e100, None, True], "nan": float("nan"), "": {}}
    try:
        if dumps(sample) != json.dumps(sample) or markers:
            encode = None
    except Exception:
        encode = None
    return dumps


_json_dumps = _make_json_dumps()


def json_response(value, status=200):
    """`value` as JSON with json.dumps defaults; raises NotSerializable."""
    try:
        body = _json_dumps({} if value is None else value)
    except Exception as error:
        raise NotSerializable(str(error)) from error
    return EncodedResponse(status, [["Content-Type", "application/json"]], body.encode("utf-8"), run_failed=False)


def is_response_object(value):
    """Duck-typed Flask/werkzeug response: a status code, headers and a body."""
    return (
        hasattr(value, "status_code")
        and hasattr(value, "headers")
        and (callable(getattr(value, "get_data", None)) or hasattr(value, "response"))
    )


def encode_result(value):
    """The response for run()'s return value; raises NotSerializable."""
    if not is_response_object(value):
        return json_response(value)
    try:
        return _encode_response_object(value)
    except Exception as error:
        raise NotSerializable(str(error)) from error


def _encode_response_object(response):
    status = int(response.status_code)
    headers, flagged_failed = _separate_run_failed_header(_header_pairs(response.headers))
    run_failed = True if status >= 500 else flagged_failed
    close = getattr(response, "close", None)
    close = close if callable(close) else None
    if _is_streamed(response):
        return EncodedResponse(status, headers, chunks=_iter_chunks(response), run_failed=run_failed, close=close)
    return EncodedResponse(status, headers, _body_bytes(response), run_failed=run_failed, close=close)


def _header_pairs(headers):
    items = headers.items() if hasattr(headers, "items") else headers
    return [[str(name), str(value)] for name, value in items]


def _separate_run_failed_header(pairs):
    """(headers to send, flag): the run-failed header becomes the result's flag."""
    kept, flag = [], None
    for name, value in pairs:
        lowered = name.lower()
        if lowered == RUN_FAILED_HEADER:
            flag = value.strip().lower() == "true"
        elif lowered not in _FRAMING_HEADERS:
            kept.append([name, value])
    return kept, flag


def _is_streamed(response):
    is_streamed = getattr(response, "is_streamed", None)
    if is_streamed is not None:
        return bool(is_streamed)
    try:
        len(response.response)
    except (TypeError, AttributeError):
        return hasattr(response, "response")
    return False


def _body_bytes(response):
    get_data = getattr(response, "get_data", None)
    data = get_data() if callable(get_data) else b"".join(encode_chunk(c) for c in response.response)
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _iter_chunks(response):
    iter_encoded = getattr(response, "iter_encoded", None)
    if callable(iter_encoded):
        return iter(iter_encoded())
    return (encode_chunk(chunk) for chunk in response.response)
