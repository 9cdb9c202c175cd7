"""The stdlib stand-in for Flask's request API (what @rawhttp scripts use without Flask)."""

import io
import os
import tempfile
import unittest

from _azmlinfsrv_runner.datastructures import BadRequest, Headers, MultiDict, UnsupportedMediaType
from _azmlinfsrv_runner.http import Request, Response
from _azmlinfsrv_runner.inputs import ScoreRequest

MULTIPART_BODY = (
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="k"\r\n\r\n'
    b"v\r\n"
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="k"\r\n\r\n'
    b"caf\xc3\xa9\r\n"
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="upload"; filename="data.bin"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n"
    b"\x00\xff\r\nbinary\r\n"
    b"--XyZ--\r\n"
)

# (method, query, headers, body): requests whose view must match Flask's. The headers
# are as the server sends them: werkzeug's spelling, repeats joined.
REQUESTS = [
    ("GET", "mode=info", [("Host", "localhost:5001")], b""),
    ("POST", "mode=info&x=1&x=2", [("Content-Type", "application/json"), ("X-Custom", "cval")], b'{"k": [1, 2]}'),
    ("POST", "", [("Content-Type", "text/plain")], b"not json"),
    ("POST", "a=%FF&b=1;c=2&&d&e=+x+", [("Content-Type", "Application/JSON; Charset=UTF-8")], b"{bad"),
    ("POST", "q=1", [("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", "9")], b"a=1&b=two"),
    ("POST", "", [("Content-Type", "multipart/form-data; boundary=XyZ")], MULTIPART_BODY),
    ("OPTIONS", "", [("Cookie", 'a=1; b="q"'), ("X-Dup", "1,2"), ("X-H2O-Id", "h")], b""),
    ("PUT", "", [("Content-Type", "application/vnd.api+json")], b'{"ok": true}'),
]


def stdlib_request(method="GET", query="", headers=(), body=b""):
    return Request(ScoreRequest(method, "/score", query, list(headers), body).wsgi_environ())


def flask_view(request):
    """What a script typically reads from a request, in comparable form."""
    view = {
        "method": request.method, "path": request.path, "full_path": request.full_path, "url": request.url,
        "base_url": request.base_url, "host": request.host, "scheme": request.scheme,
        "query_string": request.query_string, "args": request.args.to_dict(flat=False),
        "args_first": request.args.to_dict(), "headers": list(request.headers.items()),
        "content_type": request.content_type, "mimetype": request.mimetype,
        "mimetype_params": dict(request.mimetype_params), "content_length": request.content_length,
        "is_json": request.is_json, "cookies": request.cookies.to_dict(flat=False),
        "json_silent": request.get_json(silent=True), "json_forced": request.get_json(force=True, silent=True),
    }
    view["get_data"] = request.get_data()
    view["form"] = request.form.to_dict(flat=False)
    view["data_after_form"] = request.data
    view["values"] = request.values.to_dict(flat=False)
    view["files"] = {name: (upload.filename, upload.content_type, upload.read()) for name, upload in request.files.items()}
    for name, arguments in (("get_json", {}), ("json", None)):
        try:
            view[name] = request.get_json() if arguments is not None else request.json
        except Exception as error:
            view[name] = ("raises", getattr(error, "code", None))
    request.close()
    return view


class StdlibRequestTest(unittest.TestCase):
    def test_args_like_werkzeug(self):
        request = stdlib_request(query="a=1&a=2&b=x&n=5&bad=z")
        self.assertEqual(request.args.get("a"), "1")
        self.assertEqual(request.args.getlist("a"), ["1", "2"])
        self.assertEqual(request.args.get("n", type=int), 5)
        self.assertEqual(request.args.get("bad", 7, type=int), 7)
        self.assertEqual(request.args.get("missing", "default"), "default")
        self.assertEqual(request.args.to_dict(), {"a": "1", "b": "x", "n": "5", "bad": "z"})
        self.assertEqual(request.args.to_dict(flat=False)["a"], ["1", "2"])
        with self.assertRaises(KeyError):
            request.args["missing"]
        with self.assertRaises(BadRequest):
            request.args["missing"]

    def test_headers_are_case_insensitive_and_read_only(self):
        request = stdlib_request(headers=[("X-Custom", "cval"), ("Content-Type", "text/plain")])
        self.assertEqual(request.headers.get("x-custom"), "cval")
        self.assertEqual(request.headers["X-CUSTOM"], "cval")
        self.assertIn("content-type", request.headers)
        self.assertIsNone(request.headers.get("missing"))
        self.assertEqual(dict(request.headers), {"X-Custom": "cval", "Content-Type": "text/plain"})
        with self.assertRaises(TypeError):
            request.headers["X-New"] = "1"

    def test_header_names_are_the_server_s_and_a_foreign_environ_gets_werkzeug_s(self):
        # The server spells the names; the runner never re-cases them.
        self.assertEqual(list(stdlib_request(headers=[("x-as-sent", "1")]).headers.keys()), ["x-as-sent"])
        environ = {"wsgi.input": io.BytesIO(b""), "HTTP_X_H2O_ID": "h", "CONTENT_TYPE": "text/plain"}
        self.assertEqual(dict(Request(environ).headers), {"X-H2O-Id": "h", "Content-Type": "text/plain"})

    def test_get_json_errors_and_caching(self):
        with self.assertRaises(UnsupportedMediaType):
            stdlib_request("POST", headers=[("Content-Type", "text/plain")], body=b"{}").get_json()
        with self.assertRaises(UnsupportedMediaType):
            stdlib_request("POST", headers=[("Content-Type", "text/plain")], body=b"{}").json
        invalid = stdlib_request("POST", headers=[("Content-Type", "application/json")], body=b"{bad")
        self.assertIsNone(invalid.get_json(silent=True))
        with self.assertRaises(BadRequest):
            invalid.get_json()
        forced = stdlib_request("POST", headers=[("Content-Type", "text/plain")], body=b'{"a": 1}')
        self.assertEqual(forced.get_json(force=True), {"a": 1})
        self.assertEqual(forced.get_data(as_text=True), '{"a": 1}')

    def test_form_parsing_empties_data_unless_the_body_was_read_first(self):
        headers = [("Content-Type", "application/x-www-form-urlencoded")]
        parsed_first = stdlib_request("POST", headers=headers, body=b"a=1&b=2")
        self.assertEqual(parsed_first.data, b"")
        self.assertEqual(parsed_first.form.to_dict(), {"a": "1", "b": "2"})
        read_first = stdlib_request("POST", headers=headers, body=b"a=1&b=2")
        self.assertEqual(read_first.get_data(), b"a=1&b=2")
        self.assertEqual(read_first.form.to_dict(), {"a": "1", "b": "2"})
        self.assertEqual(read_first.data, b"a=1&b=2")

    def test_multipart_fields_and_files(self):
        request = stdlib_request("POST", headers=[("Content-Type", "multipart/form-data; boundary=XyZ")], body=MULTIPART_BODY)
        self.assertEqual(request.form.getlist("k"), ["v", "caf\u00e9"])
        upload = request.files["upload"]
        self.assertEqual((upload.filename, upload.content_type, upload.mimetype), ("data.bin", "application/octet-stream", "application/octet-stream"))
        self.assertTrue(upload)
        folder = tempfile.mkdtemp()
        path = os.path.join(folder, "saved.bin")
        upload.save(path)
        with open(path, "rb") as saved:
            self.assertEqual(saved.read(), b"\x00\xff\r\nbinary")
        os.remove(path)
        os.rmdir(folder)

    def test_url_parts(self):
        request = stdlib_request(query="x=1", headers=[("Host", "example.org:8080")])
        self.assertEqual((request.path, request.full_path), ("/score", "/score?x=1"))
        self.assertEqual(request.url, "http://example.org:8080/score?x=1")
        self.assertEqual(request.base_url, "http://example.org:8080/score")
        self.assertEqual(stdlib_request().full_path, "/score?")

    def test_remote_addr_and_cookies(self):
        request = Request(ScoreRequest("GET", "/score", "", [("Cookie", "a=1; b=\"two\"")], b"", "10.0.0.1").wsgi_environ())
        self.assertEqual(request.remote_addr, "10.0.0.1")
        self.assertEqual(request.cookies.to_dict(), {"a": "1", "b": "two"})


class StdlibResponseTest(unittest.TestCase):
    def test_werkzeug_defaults(self):
        response = Response("hi", status=418, mimetype="text/plain")
        self.assertEqual((response.status_code, response.status), (418, "418 I'M A TEAPOT"))
        self.assertEqual(response.content_type, "text/plain; charset=utf-8")
        self.assertEqual(response.get_data(), b"hi")
        self.assertEqual(Response(b"x").content_type, "text/html; charset=utf-8")
        self.assertEqual(Response("{}", mimetype="application/json").content_type, "application/json")

    def test_headers_api(self):
        response = Response("x")
        response.headers["X-A"] = "1"
        response.headers.add("X-A", "2")
        response.headers.add_header("X-B", True)
        self.assertEqual(response.headers.getlist("x-a"), ["1", "2"])
        self.assertEqual(response.headers["X-B"], "True")
        response.headers["x-a"] = "3"
        self.assertEqual(response.headers.getlist("X-A"), ["3"])
        response.headers.remove("X-A")
        self.assertNotIn("X-A", response.headers)
        with self.assertRaises(ValueError):
            response.headers["X-Bad"] = "a\nb"
        response.set_cookie("session", "abc", httponly=True)
        self.assertEqual(response.headers["Set-Cookie"], "session=abc; Path=/; HttpOnly")

    def test_containers(self):
        pairs = MultiDict([("a", "1"), ("a", "2")])
        self.assertEqual(pairs.items(multi=True), [("a", "1"), ("a", "2")])
        self.assertEqual(Headers({"A": "1"}).to_wsgi_list(), [("A", "1")])


class SameAsFlaskTest(unittest.TestCase):
    """The stand-in and flask.Request agree on the same WSGI environ."""

    def test_requests_read_the_same(self):
        import flask

        for method, query, headers, body in REQUESTS:
            with self.subTest(method=method, query=query, headers=headers):
                environ = ScoreRequest(method, "/score", query, headers, body).wsgi_environ()
                flask_environ = dict(environ, **{"wsgi.input": io.BytesIO(body)})
                self.assertEqual(flask_view(Request(environ)), flask_view(flask.Request(flask_environ)))

    def test_responses_carry_the_same_headers(self):
        import flask

        for arguments in (("text",), (b"bytes", 201), ("t", 418, None, "text/plain"), ("{}", 200, None, "application/json")):
            with self.subTest(arguments=arguments):
                ours, theirs = Response(*arguments), flask.Response(*arguments)
                self.assertEqual(ours.headers.items(), list(theirs.headers.items()))
                self.assertEqual((ours.status, ours.get_data()), (theirs.status, theirs.get_data()))


if __name__ == "__main__":
    unittest.main()
