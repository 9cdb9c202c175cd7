"""How a request becomes run()'s arguments (docs/contract.md; goldens echo_input, schema_std)."""

import inspect
import json
import unittest

from tests import support  # noqa: F401  (puts the runner on sys.path)
from _azmlinfsrv_runner.inputs import InputError, ScoreRequest, argument_builder, query_as_object, run_arguments
from _azmlinfsrv_runner.script import PLAIN, RAWHTTP, SCHEMA, UserScript


def make_script(mode, parameters=("data",), wants_request_headers=False, defaults=None):
    script = UserScript(module=None, init=None, run=None)
    script.input_mode = mode
    script.input_parameter = parameters[0]
    defaults = defaults or {}
    script.schema_parameters = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=defaults.get(name, inspect.Parameter.empty))
        for name in parameters
    ]
    script.wants_request_headers = wants_request_headers
    return script


def request(method="POST", body=b"", query="", headers=()):
    return ScoreRequest(method, "/score", query, list(headers), body)


class QueryAsJsonTextTest(unittest.TestCase):
    """GET to an undecorated run(): json.dumps of the parsed query (golden echo_input)."""

    CASES = [
        ("a=1&b=[1,2]&c=x&c=y", '{"a": 1, "b": [1, 2], "c": ["x", "y"]}'),
        ("d=null&e=true&f=1.5&g=%22q%22&h=%7B%22k%22%3A1%7D&s=hello+world&t=a%20b",
         '{"d": null, "e": true, "f": 1.5, "g": "q", "h": {"k": 1}, "s": "hello world", "t": "a b"}'),
        ("c=x&a=1&c=y&A=2", '{"c": ["x", "y"], "a": 1, "A": 2}'),
        ("empty=&flag", '{"empty": "", "flag": ""}'),
        ("u=caf%C3%A9&v=%E2%98%83", '{"u": "caf\\u00e9", "v": "\\u2603"}'),
        ("x=1;y=2", '{"x": "1;y=2"}'),
        ("n=NaN&big=12345678901234567890&inf=1e400&neg=-0&exp=1E2",
         '{"n": NaN, "big": 12345678901234567890, "inf": Infinity, "neg": 0, "exp": 100.0}'),
        ("bad=%FF&ok=1", '{"bad": "%FF", "ok": 1}'),
        ("", "{}"),
        ("a=1&&b=2&", '{"a": 1, "b": 2}'),
    ]

    def test_golden_query_strings(self):
        script = make_script(PLAIN)
        for query, expected in self.CASES:
            with self.subTest(query=query):
                arguments = run_arguments(script, request("GET", query=query))
                self.assertEqual(arguments, {"data": expected})

    def test_repeated_values_keep_their_order_and_types(self):
        self.assertEqual(query_as_object("k=1&k=x&k=[2]"), {"k": [1, "x", [2]]})


class PlainPostTest(unittest.TestCase):
    def test_body_is_utf8_text(self):
        script = make_script(PLAIN, parameters=("input_data",))
        body = "caf\u00e9 \u2603 \U0001F600".encode("utf-8")
        self.assertEqual(run_arguments(script, request(body=body)), {"input_data": body.decode("utf-8")})

    def test_query_is_ignored_on_post(self):
        arguments = run_arguments(make_script(PLAIN), request(body=b"body wins", query="a=1"))
        self.assertEqual(arguments, {"data": "body wins"})

    def test_no_body_is_an_empty_string(self):
        self.assertEqual(run_arguments(make_script(PLAIN), request()), {"data": ""})

    def test_invalid_utf8_is_a_400_with_the_reference_text(self):
        with self.assertRaises(InputError) as raised:
            run_arguments(make_script(PLAIN), request(body=b"\xff\xfeabc"))
        self.assertEqual(raised.exception.kind, "bad_input")
        self.assertEqual(
            raised.exception.message,
            "Input cannot be decoded as UTF-8: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte",
        )

    def test_form_bodies_are_parsed_away_as_flask_does(self):
        # curl -d sends a urlencoded form: Flask parses it, so request.data is empty.
        for content_type in ("application/x-www-form-urlencoded", "Multipart/Form-Data; boundary=xyz"):
            with self.subTest(content_type=content_type):
                arguments = run_arguments(make_script(PLAIN), request(body=b"a=1", headers=[("Content-Type", content_type)]))
                self.assertEqual(arguments, {"data": ""})

    def test_multipart_without_boundary_keeps_its_body(self):
        arguments = run_arguments(make_script(PLAIN), request(body=b"a=1", headers=[("Content-Type", "multipart/form-data")]))
        self.assertEqual(arguments, {"data": "a=1"})

    def test_every_method_the_server_sends_calls_run_with_the_body(self):
        # Which methods reach run() is the server's decision; the runner never refuses one.
        for method in ("OPTIONS", "HEAD", "PUT"):
            with self.subTest(method=method):
                self.assertEqual(run_arguments(make_script(PLAIN), request(method, body=b"b")), {"data": "b"})


class RequestHeadersTest(unittest.TestCase):
    """The request_headers argument: the headers as the server spelled them (PROTOCOL.md)."""

    def test_names_and_values_as_they_arrive_in_order(self):
        headers = [
            ("Host", "localhost:5001"), ("Content-Type", "text/plain"), ("X-Dup", "a,b"),
            ("X-H2O-Id", "h"), ("x-not-title-cased", "kept as sent"), ("Content-Length", "5"),
        ]
        arguments = run_arguments(make_script(PLAIN, wants_request_headers=True), request(body=b"hello", headers=headers))
        self.assertEqual(list(arguments["request_headers"].items()), headers)

    def test_the_environ_names_headers_as_gunicorn_does(self):
        environ = request(body=b"x", headers=[("Content-Type", "text/plain"), ("X-H2O-Id", "h"),
                                              ("Content-Length", "1")]).wsgi_environ()
        self.assertEqual((environ["CONTENT_TYPE"], environ["HTTP_X_H2O_ID"], environ["CONTENT_LENGTH"]),
                         ("text/plain", "h", "1"))
        self.assertNotIn("HTTP_CONTENT_TYPE", environ)

    def test_absent_when_run_does_not_ask_for_it(self):
        self.assertNotIn("request_headers", run_arguments(make_script(PLAIN), request(body=b"x")))


class SchemaInputTest(unittest.TestCase):
    """@input_schema: the 415/400 rules (golden schema_std)."""

    def setUp(self):
        self.script = make_script(SCHEMA, parameters=("data", "factor"), defaults={"factor": 2})

    def post(self, body, content_type="application/json"):
        headers = [("Content-Type", content_type)] if content_type else []
        return run_arguments(self.script, request(body=body, headers=headers))

    def assert_refused(self, kind, message, body, content_type="application/json"):
        with self.assertRaises(InputError) as raised:
            self.post(body, content_type)
        self.assertEqual((raised.exception.kind, raised.exception.message), (kind, message))

    def test_parameters_by_name_with_defaults_and_extra_keys_ignored(self):
        self.assertEqual(self.post(b'{"data": {"a": 3}, "factor": 3}'), {"data": {"a": 3}, "factor": 3})
        self.assertEqual(self.post(b'{"data": {"a": 3}, "extra": 1}'), {"data": {"a": 3}, "factor": 2})

    def test_json_media_types_accepted(self):
        for content_type in ("application/json; charset=utf-8", "application/vnd.api+json", "APPLICATION/JSON"):
            with self.subTest(content_type=content_type):
                self.assertEqual(self.post(b'{"data": 1}', content_type), {"data": 1, "factor": 2})

    def test_other_media_types_are_415(self):
        for content_type in ("text/plain", None, "application/jsonx", "text/json"):
            with self.subTest(content_type=content_type):
                self.assert_refused("unsupported_media_type", "Expects Content-Type to be application/json",
                                    b'{"data": 1}', content_type)

    def test_body_errors_are_400_with_the_reference_texts(self):
        self.assert_refused("bad_input", "POST body could not be decoded as JSON: Expecting value: line 1 column 10 (char 9)",
                            b'{"data": ')
        self.assert_refused("bad_input", "POST body is empty. Expecting a JSON dictionary.", b"")
        for body in (b"[1, 2]", b'"str"', b"null"):
            with self.subTest(body=body):
                self.assert_refused("bad_input", "POST body should be a JSON dictionary.", body)
        self.assert_refused("bad_input", "A value is not provided for the 'data' parameter.", b'{"factor": 3}')

    def test_non_utf8_json_escapes_as_an_internal_error(self):
        # The reference answers 500 "internal error" here, not 400 (golden quirk).
        with self.assertRaises(UnicodeDecodeError):
            self.post(b"\xff")

    def test_get_takes_parameters_from_the_query(self):
        arguments = run_arguments(self.script, request("GET", query="data=%7B%22a%22%3A5%7D&factor=2"))
        self.assertEqual(arguments, {"data": {"a": 5}, "factor": 2})
        with self.assertRaises(InputError) as raised:
            run_arguments(self.script, request("GET", query="factor=2"))
        self.assertEqual(raised.exception.message, "A value is not provided for the 'data' parameter.")


class RawHttpInputTest(unittest.TestCase):
    def test_every_method_reaches_run_with_a_request_object(self):
        script = make_script(RAWHTTP, parameters=("req",))
        for method in ("GET", "POST", "OPTIONS", "HEAD", "DELETE"):
            with self.subTest(method=method):
                arguments = run_arguments(script, request(method, body=b'{"k": 1}', query="a=1",
                                                          headers=[("Content-Type", "application/json")]))
                incoming = arguments["req"]
                self.assertEqual((incoming.method, incoming.path, incoming.args.get("a")), (method, "/score", "1"))
                self.assertEqual(incoming.get_json(), {"k": 1})

    def test_wsgi_environ_as_gunicorn_builds_it(self):
        environ = request("POST", body=b"abc", query="q=%C3%A9", headers=[
            ("Content-Type", "text/plain"), ("Content-Length", "3"), ("X-A", "1,2"),
        ]).wsgi_environ()
        self.assertEqual(environ["CONTENT_TYPE"], "text/plain")
        self.assertEqual(environ["CONTENT_LENGTH"], "3")
        self.assertEqual(environ["HTTP_X_A"], "1,2")
        self.assertEqual(environ["QUERY_STRING"], "q=%C3%A9")
        self.assertEqual(environ["wsgi.input"].read(), b"abc")
        json.dumps(sorted(key for key in environ if key.isupper()))  # plain strings only
        self.assertEqual(environ["azmlinfsrv.headers"][2], ("X-A", "1,2"))  # the names for the stand-in


class ArgumentBuilderTest(unittest.TestCase):
    """argument_builder()'s fast path gives what run_arguments() gives, odd frames included."""

    FRAMES = [
        ({"method": "POST", "headers": [["Content-Type", "application/json"]]}, b'{"a": 1}'),
        ({"method": "POST", "headers": []}, b"caf\xc3\xa9"),
        ({"method": "POST"}, b"x"),
        ({"method": "POST", "headers": [["content-type", "application/x-www-form-urlencoded"]]}, b"a=1"),
        ({"method": "POST", "headers": [["Content-Type", " Multipart/FORM-data ; boundary=b"]]}, b"a=1"),
        ({"method": "POST", "headers": [["Content-Type", "multipart/form-data"]]}, b"a=1"),
        ({"method": "POST", "headers": [["Content-Type", "text/plain; note=form"]]}, b"a=1"),
        ({"method": "POST", "headers": [["Content-Type", "application/x-www-form-urlencoded"],
                                        ["CONTENT-TYPE", "text/plain"]]}, b"a=1"),
        ({"method": "POST", "headers": [["Content_Type", "application/x-www-form-urlencoded"]]}, b"a=1"),
        ({"method": "POST", "headers": [["Content-Type", 5]]}, b"a=1"),
        ({"method": "POST", "headers": [[1, "x"], ["X-A", None]]}, b"a=1"),
        ({"method": "POST", "headers": [["Content-Type", "a", "b"]]}, b"a=1"),
        ({"method": "POST", "headers": {"Content-Type": "x"}}, b"a=1"),
        ({"method": "POST", "headers": [["Content-Type", "text/plain"]]}, b"\xff"),
        ({"method": "post"}, b"x"),
        ({"method": "GET", "query": "a=1&b=x"}, b""),
        ({"method": "PUT"}, b"x"),
        ({}, b""),
    ]

    def outcome(self, function, *arguments):
        try:
            return "ok", function(*arguments)
        except InputError as error:
            return type(error).__name__, str(error)
        except Exception as error:
            return "error", type(error).__name__

    def test_same_arguments_as_run_arguments(self):
        for wants_request_headers in (False, True):
            script = make_script(PLAIN, wants_request_headers=wants_request_headers)
            build = argument_builder(script)
            for params, payload in self.FRAMES:
                with self.subTest(params=params, payload=payload, request_headers=wants_request_headers):
                    expected = self.outcome(lambda: run_arguments(script, ScoreRequest.from_frame(params, payload)))
                    self.assertEqual(self.outcome(build, params, payload), expected)


if __name__ == "__main__":
    unittest.main()
