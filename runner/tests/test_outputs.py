"""How run()'s return value becomes status, headers and body (goldens errors, rawhttp)."""

import math
import unittest

from tests import support  # noqa: F401  (puts the runner on sys.path)
from _azmlinfsrv_runner import http as runner_http
from _azmlinfsrv_runner.aml_response import make_aml_response_class
from _azmlinfsrv_runner.outputs import NotSerializable, encode_result

STDLIB_AML_RESPONSE = make_aml_response_class(runner_http.Response)


def body_of(response):
    if response.is_streaming:
        return b"".join(response.chunks)
    return response.body


class JsonResultTest(unittest.TestCase):
    """Anything but a response object: json.dumps with Python's defaults."""

    CASES = [
        (None, b"{}"),
        ({"v": math.nan, "inf": math.inf}, b'{"v": NaN, "inf": Infinity}'),
        ({"text": "caf\u00e9 \u2603 \U0001F600"}, b'{"text": "caf\\u00e9 \\u2603 \\ud83d\\ude00"}'),
        ({1: "one", 2: "two"}, b'{"1": "one", "2": "two"}'),
        ((1, 2, 3), b"[1, 2, 3]"),
        (0.1 + 0.2, b"0.30000000000000004"),
        (123456789012345678901234567890, b"123456789012345678901234567890"),
        ({"a": [1, {"b": None}], "c": True, "d": 1.5}, b'{"a": [1, {"b": null}], "c": true, "d": 1.5}'),
        ("just a string", b'"just a string"'),
        ([1, "two", None, True], b'[1, "two", null, true]'),
    ]

    def test_golden_results(self):
        for value, expected in self.CASES:
            with self.subTest(value=value):
                response = encode_result(value)
                self.assertEqual(response.status, 200)
                self.assertEqual(response.headers, [["Content-Type", "application/json"]])
                self.assertEqual(response.body, expected)
                self.assertIs(response.run_failed, False)
                self.assertFalse(response.is_streaming)

    def test_values_json_cannot_encode(self):
        for value in ({1, 2, 3}, object(), b"raw bytes"):
            with self.subTest(value=value), self.assertRaises(NotSerializable):
                encode_result(value)


class AMLResponseTestMixin:
    """AMLResponse semantics; run for the stdlib stand-in and for Flask's when installed."""

    AMLResponse = None

    def encode(self, *args, **kwargs):
        return encode_result(self.AMLResponse(*args, **kwargs))

    def test_custom_status_and_comma_split_headers(self):
        response = self.encode("custom body", 201, {"Content-Type": "text/csv", "X-Custom-Resp": "alpha, beta", "X-Single": "one"})
        self.assertEqual(response.status, 201)
        self.assertEqual(response.headers, [
            ["Content-Type", "text/csv"], ["X-Custom-Resp", "alpha"], ["X-Custom-Resp", "beta"], ["X-Single", "one"],
        ])
        self.assertEqual(body_of(response), b"custom body")
        self.assertIs(response.run_failed, False)

    def test_text_gets_the_default_content_type(self):
        response = self.encode("plain text", 200)
        self.assertEqual(response.headers, [["Content-Type", "text/html; charset=utf-8"]])
        self.assertEqual(body_of(response), b"plain text")

    def test_lower_case_content_type_keeps_the_default_too(self):
        response = self.encode("x", 200, {"content-type": "text/plain"})
        self.assertEqual(response.headers, [["Content-Type", "text/html; charset=utf-8"], ["content-type", "text/plain"]])

    def test_json_str_and_none_body(self):
        response = self.encode({"k": "v", "n": [1, 2]}, 202, json_str=True)
        self.assertEqual((response.status, body_of(response)), (202, b'{"k": "v", "n": [1, 2]}'))
        self.assertEqual(response.headers, [["Content-Type", "application/json"]])
        self.assertEqual(body_of(self.encode(None, 200)), b"{}")

    def test_bytes_body(self):
        response = self.encode(bytes(range(256)), 200, {"Content-Type": "application/octet-stream"})
        self.assertEqual(body_of(response), bytes(range(256)))
        self.assertEqual(response.headers, [["Content-Type", "application/octet-stream"]])

    def test_status_500_and_more_marks_the_run_failed(self):
        self.assertIs(self.encode("x", 500).run_failed, True)
        self.assertIs(self.encode({"error": "unavailable"}, 503, json_str=True).run_failed, True)
        self.assertIs(self.encode("bad thing", 422, {"Content-Type": "text/plain"}).run_failed, False)
        self.assertIs(self.encode("x", 200, run_function_failed=True).run_failed, True)

    def test_generator_body_is_streamed(self):
        def chunks():
            yield "one "
            yield b"two"

        response = self.encode(chunks(), 200)
        self.assertTrue(response.is_streaming)
        self.assertEqual(list(response.chunks), [b"one ", b"two"])
        self.assertEqual(response.headers, [["Content-Type", "text/html; charset=utf-8"]])

    def test_list_body_is_joined_not_streamed(self):
        response = self.encode(["a", "b"], 200)
        self.assertFalse(response.is_streaming)
        self.assertEqual(response.body, b"ab")


class StdlibAMLResponseTest(AMLResponseTestMixin, unittest.TestCase):
    AMLResponse = STDLIB_AML_RESPONSE


class FlaskAMLResponseTest(AMLResponseTestMixin, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import flask

        cls.AMLResponse = make_aml_response_class(flask.Response)


class OtherResponseObjectsTest(unittest.TestCase):
    def test_response_without_the_failed_header_leaves_the_flag_out(self):
        response = encode_result(runner_http.Response("teapot", status=418, mimetype="text/plain"))
        self.assertEqual((response.status, response.body), (418, b"teapot"))
        self.assertEqual(response.headers, [["Content-Type", "text/plain; charset=utf-8"]])
        self.assertIsNone(response.run_failed)
        self.assertIs(encode_result(runner_http.Response("x", status=500)).run_failed, True)

    def test_flask_response(self):
        import flask

        response = encode_result(flask.Response("teapot", status=418, mimetype="text/plain"))
        self.assertEqual((response.status, response.body, response.run_failed), (418, b"teapot", None))
        self.assertEqual(response.headers, [["Content-Type", "text/plain; charset=utf-8"]])

    def test_duck_typed_response(self):
        class Minimal:
            status_code = 204
            headers = {"X-A": "1", "Content-Length": "0"}
            response = [b""]

        response = encode_result(Minimal())
        self.assertEqual((response.status, response.headers, response.body), (204, [["X-A", "1"]], b""))

    def test_body_that_cannot_be_encoded(self):
        with self.assertRaises(NotSerializable):
            encode_result(runner_http.Response([1, 2]))


if __name__ == "__main__":
    unittest.main()
