"""runner.serve() end to end, in this process, with real scripts in a temp folder."""

import io
import json
import os
import sys
import time
import unittest

from _azmlinfsrv_runner import serve as runner
from tests.support import (
    Conversation,
    ScriptFolder,
    load_frame,
    notification_frame,
    parse_output,
    request_frame,
    run_runner_process,
    score_frame,
)



class ServeTestCase(unittest.TestCase):
    def setUp(self):
        self.folder = ScriptFolder()
        self.addCleanup(self.folder.remove)

    def serve_script(self, source, *frames, timeout_ms=3600000, name="score.py", init=True):
        path = self.folder.write(name, source)
        opening = [load_frame(path, timeout_ms=timeout_ms)] + ([request_frame(2, "init")] if init else [])
        return Conversation.serve(*(opening + list(frames)))


class PlainScriptTest(ServeTestCase):
    SOURCE = """
        import logging
        import sys

        def init():
            print("init says", "hello")
            logging.getLogger("mine").info("an info record")

        def run(data):
            print("got", data)
            sys.stdout.write("partial")
            return {"echo": data, "module": __name__}
    """

    def test_load_init_score(self):
        talk = self.serve_script(self.SOURCE, score_frame(3, body=b"hello"), score_frame(4, method="GET", query="a=1"))
        load_result, _ = talk.result(1)
        self.assertEqual(load_result["input_mode"], "plain")
        self.assertEqual(load_result["schemas"], {v: {"input": None, "output": None} for v in ("2", "3", "3.1")})
        self.assertEqual(talk.result(2), ({}, b""))
        result, body = talk.result(3)
        self.assertEqual(json.loads(body), {"echo": "hello", "module": "entry_module"})
        self.assertEqual((result["status"], result["run_failed"], result["streaming"]), (200, False, False))
        self.assertEqual(result["headers"], [["Content-Type", "application/json"]])
        self.assertIsInstance(result["run_ms"], float)
        self.assertEqual(json.loads(talk.result(4)[1])["echo"], '{"a": 1}')

    def test_log_lines_as_the_reference_writes_them(self):
        talk = self.serve_script(self.SOURCE, score_frame(3, body=b"hello"))
        path = os.path.join(self.folder.path, "score.py")
        self.assertEqual(talk.log_messages("azmlinfsrv.user_script"), [
            "Found user script at {}".format(path),
            "run() is not decorated. Server will invoke it with the input in JSON string.",
            "Invoking user's init function",
            "Users's init has completed successfully",
        ])
        self.assertEqual(talk.log_messages("azmlinfsrv.print"), ["init says hello", "got hello", "partial"])
        self.assertEqual(talk.logs("mine"), [dict(talk.logs("mine")[0], level="INFO", message="an info record")])

    def test_log_level_filters_python_logging_but_not_prints(self):
        path = self.folder.write("score.py", self.SOURCE)
        talk = Conversation.serve(load_frame(path, log_level="warning"), request_frame(2, "init"))
        self.assertEqual(talk.logs("mine"), [])
        self.assertEqual(talk.log_messages("azmlinfsrv.print"), ["init says hello"])

    def test_entry_script_relative_to_app_root_and_source_dir_on_sys_path(self):
        self.folder.write("src/helper.py", "VALUE = 'from source dir'\n")
        self.folder.write("score.py", """
            import helper
            def init(): pass
            def run(data): return helper.VALUE
        """)
        talk = Conversation.serve(
            load_frame("score.py", app_root=self.folder.path, source_dir="src"), score_frame(3, body=b"x"))
        self.assertEqual(talk.result(3)[1], b'"from source dir"')

    def test_no_entry_script_imports_main_from_the_app_root(self):
        self.folder.write("main.py", "def init(): pass\ndef run(data): return 'main ' + data\n")
        talk = Conversation.serve(load_frame(None, app_root=self.folder.path), score_frame(3, body=b"x"))
        self.assertEqual(talk.result(3)[1], b'"main x"')
        sys.modules.pop("main", None)

    def test_no_entry_script_and_no_main(self):
        empty = os.path.join(self.folder.path, "empty")
        os.mkdir(empty)
        # A runner of its own: this process may have imported a `main` already.
        _, frames, _ = run_runner_process(load_frame(None, app_root=empty), cwd=empty)
        error = Conversation(frames).error(1)
        self.assertEqual(error["data"]["kind"], "script_not_found")
        self.assertTrue(error["message"].startswith("No score script found. Expected score script main.py."))

    def test_request_headers_argument(self):
        talk = self.serve_script(
            "def init(): pass\ndef run(data, request_headers): return request_headers\n",
            score_frame(3, body=b"x", headers=[("X-Custom", "1,2"), ("x-as-sent", "v")]))
        # As the server spelled them: the runner does not re-case or re-join.
        self.assertEqual(json.loads(talk.result(3)[1]), {"X-Custom": "1,2", "x-as-sent": "v"})

    def test_every_score_frame_calls_run_whatever_its_method(self):
        # The server decides which methods reach run(); the runner answers none itself.
        talk = self.serve_script("def init(): pass\ndef run(data): return 'ran with ' + repr(data)\n",
                                 score_frame(3, method="OPTIONS", body=b"o"), score_frame(4, method="PUT", body=b"p"))
        self.assertEqual(json.loads(talk.result(3)[1]), "ran with 'o'")
        self.assertEqual(json.loads(talk.result(4)[1]), "ran with 'p'")


class RunFailuresTest(ServeTestCase):
    SOURCE = """
        import json, time

        def init(): pass

        def run(raw):
            mode = json.loads(raw)["mode"]
            if mode == "raise": raise ValueError("bad value")
            if mode == "keyboard": raise KeyboardInterrupt()
            if mode == "exit": raise SystemExit(3)
            if mode == "sleep": time.sleep(5)
            if mode == "swallow":
                try:
                    time.sleep(5)
                except Exception:
                    return "swallowed"
            if mode == "chatty":
                while True:
                    print("x" * 200)
            if mode == "object": return object()
            return "ok"
    """

    def score(self, request_id, mode):
        return score_frame(request_id, body=json.dumps({"mode": mode}).encode())

    def test_exceptions_are_user_errors_and_the_runner_goes_on(self):
        talk = self.serve_script(self.SOURCE, self.score(3, "raise"), self.score(4, "keyboard"),
                                 self.score(5, "exit"), self.score(6, "fine"))
        path = os.path.join(self.folder.path, "score.py")
        for request_id, message, exception_type, line in ((3, "ValueError: bad value", "ValueError", 7),
                                                          (4, "KeyboardInterrupt", "KeyboardInterrupt", 8),
                                                          (5, "SystemExit: 3", "SystemExit", 9)):
            error = talk.error(request_id)
            self.assertEqual((error["code"], error["message"]), (-32000, "run() raised " + message))
            data = error["data"]
            self.assertEqual((data["kind"], data["exception_type"], data["location"]),
                             ("user_error", exception_type, {"file": path, "line": line, "function": "run"}))
            self.assertTrue(data["traceback"].rstrip().endswith(message), data["traceback"])
        self.assertEqual(talk.error(3)["data"]["exception_message"], "bad value")
        self.assertEqual(talk.result(6)[1], b'"ok"')
        logged = talk.logs("azmlinfsrv")
        self.assertEqual([record["level"] for record in logged], ["ERROR"] * 3)
        self.assertTrue(logged[0]["message"].startswith("Encountered Exception: Traceback (most recent call last):\n"))
        self.assertIn('score.py", line 7, in run', logged[0]["message"])
        self.assertTrue(logged[0]["message"].endswith("ValueError: bad value\n"))
        self.assertNotIn("runner.py", logged[0]["message"])

    def test_timeout_interrupts_run_and_the_runner_goes_on(self):
        started = time.monotonic()
        talk = self.serve_script(self.SOURCE, self.score(3, "sleep"), self.score(4, "swallow"), self.score(5, "fine"),
                                 timeout_ms=200)
        self.assertLess(time.monotonic() - started, 2.0)
        path = os.path.join(self.folder.path, "score.py")
        for request_id, line in ((3, 10), (4, 13)):  # `except Exception` cannot swallow it
            error = talk.error(request_id)
            self.assertEqual(error["message"], "run() did not return within 200 ms")
            data = error["data"]
            self.assertEqual((data["kind"], data["exception_type"], data["location"]),
                             ("timeout", "azmlinfsrv.ScoringTimeout", {"file": path, "line": line, "function": "run"}))
        self.assertEqual(talk.result(5)[1], b'"ok"')
        self.assertIn("azmlinfsrv.ScoringTimeout", talk.log_messages("azmlinfsrv")[0])

    def test_timeout_never_cuts_a_frame_in_half(self):
        # run() prints as fast as it can into a slow channel (like a full pipe, which a
        # signal interrupts mid-write): the timer fires while frames are being written.
        path = self.folder.write("score.py", self.SOURCE)
        chatty_ids = range(3, 8)
        frames = [load_frame(path, timeout_ms=50), request_frame(2, "init")]
        frames += [self.score(request_id, "chatty") for request_id in chatty_ids] + [self.score(9, "fine")]
        output = PieceByPieceWriter()
        runner.serve(io.BytesIO(b"".join(frames)), output)
        talk = Conversation(parse_output(output.getvalue()))
        for request_id in chatty_ids:
            self.assertEqual(talk.error(request_id)["data"]["kind"], "timeout")
        self.assertEqual(talk.result(9)[1], b'"ok"')
        self.assertTrue(all(message == "x" * 200 for message in talk.log_messages("azmlinfsrv.print")))

    def test_result_that_json_cannot_encode(self):
        talk = self.serve_script(self.SOURCE, self.score(3, "object"))
        error = talk.error(3)
        self.assertEqual(error["message"],
                         "the result of run() is not JSON-serializable: Object of type object is not JSON serializable")
        self.assertEqual((error["data"]["kind"], error["data"]["exception_type"]), ("not_serializable", "TypeError"))
        # No frame of the user's is involved: the innermost outside the runner (json's).
        self.assertTrue(error["data"]["location"]["file"].endswith(os.path.join("json", "encoder.py")),
                        error["data"]["location"])
        self.assertIn("TypeError: Object of type object is not JSON serializable", talk.log_messages("azmlinfsrv")[0])

    def test_the_location_is_the_user_s_line_not_the_library_s(self):
        talk = self.serve_script("""
            import json

            def init(): pass

            def run(raw):
                return json.loads("{not json")
        """, score_frame(3, body=b"x"))
        data = talk.error(3)["data"]
        self.assertEqual((data["exception_type"], data["location"]),
                         ("json.decoder.JSONDecodeError",
                          {"file": os.path.join(self.folder.path, "score.py"), "line": 6, "function": "run"}))

    def test_bad_input_does_not_call_run(self):
        talk = self.serve_script(self.SOURCE, score_frame(3, body=b"\xff"))
        self.assertEqual(talk.error(3)["data"], {"kind": "bad_input"})
        self.assertEqual(talk.logs("azmlinfsrv"), [])


class PieceByPieceWriter(io.BytesIO):
    """An output that takes each write in small pieces, in Python code, like a slow pipe."""

    def write(self, data):
        data = bytes(data)
        for start in range(0, len(data), 4):
            super().write(data[start:start + 4])
        return len(data)


class LoadFailuresTest(ServeTestCase):
    def assert_load_fails(self, source, kind, message, traceback_ends=None):
        talk = self.serve_script(source, init=False)
        error = talk.error(1)
        self.assertEqual((error["code"], error["data"]["kind"]), (-32000, kind))
        self.assertEqual(error["message"], message.format(path=os.path.join(self.folder.path, "score.py")))
        if traceback_ends is None:
            self.assertEqual(error["data"], {"kind": kind})  # no exception, no exception data
        else:
            self.assertTrue(error["data"]["traceback"].rstrip().endswith(traceback_ends), error["data"]["traceback"])
            self.assertEqual(set(error["data"]), {"kind", "traceback", "exception_type", "exception_message", "location"})
        return error

    def test_signatures_refused_with_the_reference_messages(self):
        refused = "run() cannot accept positional-only arguments, *args, or **kwargs."
        for signature in ("*args", "data, **kwargs", "data, /"):
            with self.subTest(signature=signature):
                self.assert_load_fails("def init(): pass\ndef run({}): pass\n".format(signature), "bad_script", refused)
        self.assert_load_fails("def init(): pass\ndef run(): pass\n", "bad_script",
                               "run() needs to accept an argument for input data.")
        self.assert_load_fails("def init(): pass\ndef run(request_headers): pass\n", "bad_script",
                               'run() needs to accept an argument other than "request_headers".')

    def test_missing_functions(self):
        self.assert_load_fails("def run(data): pass\n", "bad_script",
                               "User script at {path} does not have a init() function defined.")
        self.assert_load_fails("def init(): pass\n", "bad_script",
                               "User script at {path} does not have a run() function defined.")

    def test_import_errors_carry_python_s_own_message(self):
        self.assert_load_fails("raise ImportError('no luck')\n", "import_failed",
                               "Failed to import user script because it raised an unhandled exception: ImportError: no luck",
                               "ImportError: no luck")
        error = self.assert_load_fails("def init():\n        pass\n    x = 1\n", "import_failed",
                                       "Failed to import user script because it raised an unhandled exception:"
                                       " IndentationError: unindent does not match any outer indentation level"
                                       " (score.py, line 3)",
                                       "IndentationError: unindent does not match any outer indentation level")
        self.assertEqual((error["data"]["exception_type"], error["data"]["location"]),
                         ("IndentationError",
                          {"file": os.path.join(self.folder.path, "score.py"), "line": 3, "function": None}))
        self.assert_load_fails("import sys\nsys.exit(4)\n", "import_failed",
                               "Failed to import user script because it raised an unhandled exception: SystemExit: 4",
                               "SystemExit: 4")

    def test_missing_script(self):
        missing = os.path.join(self.folder.path, "missing.py")
        talk = Conversation.serve(load_frame(missing))
        error = talk.error(1)
        self.assertEqual(error["data"]["kind"], "script_not_found")
        self.assertEqual(error["message"], "User script not found: [Errno 2] No such file or directory: '{}'".format(missing))

    def test_a_file_the_script_cannot_open_is_an_import_failure(self):
        self.assert_load_fails("open('/nonexistent/model.bin')\n", "import_failed",
                               "Failed to import user script because it raised an unhandled exception: FileNotFoundError:"
                               " [Errno 2] No such file or directory: '/nonexistent/model.bin'",
                               "No such file or directory: '/nonexistent/model.bin'")

    def test_init_failure(self):
        talk = self.serve_script("def init(): raise RuntimeError('init broke')\ndef run(data): pass\n")
        error = talk.error(2)
        self.assertEqual(error["message"], "User's init function failed: RuntimeError: init broke")
        self.assertEqual(error["data"]["kind"], "init_failed")
        self.assertTrue(error["data"]["traceback"].startswith("Traceback (most recent call last):\n  File "))
        self.assertEqual((error["data"]["exception_type"], error["data"]["exception_message"], error["data"]["location"]),
                         ("RuntimeError", "init broke",
                          {"file": os.path.join(self.folder.path, "score.py"), "line": 1, "function": "init"}))
        self.assertIn("Invoking user's init function", talk.log_messages())
        self.assertNotIn("Users's init has completed successfully", talk.log_messages())

    def test_the_scoring_timeout_comes_from_the_server(self):
        path = self.folder.write("score.py", "def init(): pass\ndef run(data): return data\n")
        params = json.loads(load_frame(path).split(b"\n")[0])["params"]
        del params["scoring_timeout_ms"]
        talk = Conversation.serve(request_frame(1, "load", params), load_frame(path, request_id=2))
        error = talk.error(1)
        self.assertEqual(error["data"], {"kind": "internal"})
        self.assertIn("scoring_timeout_ms", error["message"])
        self.assertEqual(talk.result(2)[0]["input_mode"], "plain")  # not loaded: can be retried

    def test_a_failed_load_can_be_retried_a_good_one_cannot(self):
        good = self.folder.write("good.py", "def init(): pass\ndef run(data): return 1\n")
        talk = Conversation.serve(load_frame(os.path.join(self.folder.path, "nope.py"), request_id=1),
                                  load_frame(good, request_id=2), load_frame(good, request_id=3), score_frame(4))
        self.assertEqual(talk.error(1)["data"]["kind"], "script_not_found")
        self.assertEqual(talk.result(2)[0]["input_mode"], "plain")
        self.assertEqual(talk.error(3)["data"]["kind"], "internal")
        self.assertEqual(talk.result(4)[1], b"1")


class ScriptShapesTest(ServeTestCase):
    def test_driver_module_run_is_called_but_outer_init(self):
        self.folder.write("inner_score.py", "def init(): raise AssertionError('not called')\ndef run(data): return 'inner ' + data\n")
        talk = self.serve_script("""
            import inner_score as driver_module
            initialised = []
            def init(): print("outer init")
            def run(data): return "outer"
        """, score_frame(3, body=b"x"))
        self.assertEqual(talk.result(3)[1], b'"inner x"')
        self.assertIn("outer init", talk.log_messages("azmlinfsrv.print"))
        found = talk.log_messages("azmlinfsrv.user_script")[0]
        self.assertTrue(found.startswith("Found driver script at "), found)
        self.assertIn("inner_score.py", found)

    def test_rawhttp_script_gets_the_request_for_every_method(self):
        talk = self.serve_script("""
            from azureml_inference_server_http.api.aml_request import rawhttp
            from azureml.contrib.services.aml_response import AMLResponse

            def init(): pass

            @rawhttp
            def run(request):
                return AMLResponse(request.method + " " + request.full_path, 201, {"X-Vals": "a,b"})
        """, score_frame(3, method="OPTIONS", query="q=1"), score_frame(4, method="HEAD"))
        self.assertEqual(talk.result(1)[0]["input_mode"], "rawhttp")
        self.assertIn("run() is decorated with @rawhttp. Server will invoke it with the flask request object.",
                      talk.log_messages())
        result, body = talk.result(3)
        self.assertEqual((result["status"], body, result["run_failed"]), (201, b"OPTIONS /score?q=1", False))
        self.assertEqual(result["headers"], [["Content-Type", "text/html; charset=utf-8"], ["X-Vals", "a"], ["X-Vals", "b"]])
        self.assertEqual(talk.result(4)[1], b"HEAD /score?")

    def test_contrib_modules_are_the_runner_s_under_both_names(self):
        talk = self.serve_script("""
            import azureml.contrib.services.aml_request as contrib_request
            import azureml_inference_server_http.api.aml_request as api_request
            from azureml.contrib.services.aml_response import AMLResponse as ContribResponse
            from azureml_inference_server_http.api.aml_response import AMLResponse as ApiResponse
            from azureml.contrib.services.aml_request import AMLRequest

            def init(): pass

            def run(data):
                return {"same_module": contrib_request is api_request,
                        "same_class": ContribResponse is ApiResponse,
                        "runner_module": contrib_request.__name__,
                        "request_class": AMLRequest.__name__}
        """, score_frame(3))
        self.assertEqual(json.loads(talk.result(3)[1]), {
            "same_module": True, "same_class": True, "runner_module": "_azmlinfsrv_runner.aml_request", "request_class": "AMLRequest"})

    def test_streamed_body_and_a_failing_one(self):
        talk = self.serve_script("""
            from azureml.contrib.services.aml_response import AMLResponse

            def init(): pass

            def parts(fail):
                yield "a"
                yield b""
                yield b"b"
                if fail:
                    raise OSError("disk gone")

            def run(data):
                return AMLResponse(parts(data == "fail"), 200)
        """, score_frame(3, body=b"ok"), score_frame(4, body=b"fail"), score_frame(5, body=b"ok"))
        result, _ = talk.result(3)
        self.assertTrue(result["streaming"])
        events = talk.notifications("chunk") + talk.notifications("end")
        self.assertEqual([(params["id"], payload) for params, payload in talk.notifications("chunk")],
                         [(3, b"a"), (3, b"b"), (4, b"a"), (4, b"b"), (5, b"a"), (5, b"b")])
        self.assertEqual([params for params, _ in talk.notifications("end")], [
            {"id": 3, "error": None}, {"id": 4, "error": "OSError: disk gone"}, {"id": 5, "error": None}])
        self.assertEqual(len(events), 9)


    def test_a_cancel_closes_the_streaming_generator_and_other_frames_wait_their_turn(self):
        talk = self.serve_script("""
            from azureml.contrib.services.aml_response import AMLResponse

            CLOSED = []

            def init(): pass

            def forever(tag):
                try:
                    for _ in range(10000):  # "forever", but a runner that misses the cancel ends
                        yield tag
                finally:
                    CLOSED.append(tag.decode())

            def three(tag):
                for _ in range(3):
                    yield tag

            def run(data):
                if data == "forever":
                    return AMLResponse(forever(b"f"), 200)
                if data == "three":
                    return AMLResponse(three(b"t"), 200)
                return {"closed": CLOSED}
        """, score_frame(3, body=b"forever"), notification_frame("cancel", {"id": 99}), notification_frame("cancel", {"id": 3}),
            score_frame(4, body=b"report"), notification_frame("cancel", {"id": 5}), score_frame(5, body=b"three"))
        ends = [params for params, _ in talk.notifications("end")]
        self.assertEqual(ends, [{"id": 3, "error": "cancelled: the client stopped reading the answer"},
                                {"id": 5, "error": None}])
        # The generator's finally ran before the next request started.
        self.assertEqual(json.loads(talk.result(4)[1]), {"closed": ["f"]})
        # A cancel for a request that is not streaming (yet, or any more) is ignored.
        self.assertEqual([payload for params, payload in talk.notifications("chunk") if params["id"] == 5], [b"t"] * 3)
        order = [message.get("id") or message["params"].get("id") for message, _ in talk.frames
                 if message.get("method") in (None, "end")]
        self.assertEqual(order, [1, 2, 3, 3, 4, 5, 5])


class ProtocolEdgesTest(ServeTestCase):
    def test_shutdown_request_is_answered_and_ends_serving(self):
        talk = Conversation.serve(request_frame(5, "shutdown"), request_frame(6, "no_such_method"))
        self.assertEqual(talk.result(5), ({}, b""))
        self.assertEqual([message.get("id") for message, _ in talk.frames], [None, 5])

    def test_every_answer_is_written_before_the_next_request_starts(self):
        # Pipelined quick requests: each run() counts the answers already written to
        # the output file. The server requeues only requests behind the running one
        # after a crash, which is right only if no answer is ever held back.
        path = self.folder.write("score.py", """
            def init(): pass

            def run(data):
                with open(data, "rb") as output:
                    return {"answers_before": output.read().count(b'"run_ms"')}
        """)
        output_path = os.path.join(self.folder.path, "output.bin")
        frames = [load_frame(path), request_frame(2, "init")]
        frames += [score_frame(request_id, body=output_path.encode()) for request_id in range(3, 43)]
        with open(output_path, "wb", buffering=0) as output:
            runner.serve(io.BytesIO(b"".join(frames)), output)
        with open(output_path, "rb") as output:
            talk = Conversation(parse_output(output.read()))
        self.assertEqual([json.loads(talk.result(request_id)[1])["answers_before"] for request_id in range(3, 43)],
                         list(range(40)))

    def test_end_of_input_ends_serving(self):
        talk = Conversation.serve()
        self.assertEqual([message["method"] for message, _ in talk.frames], ["hello"])

    def test_requests_before_load(self):
        talk = Conversation.serve(request_frame(1, "init"), score_frame(2), notification_frame("whatever", {}))
        for request_id in (1, 2):
            self.assertEqual(talk.error(request_id)["data"], {"kind": "internal"})

    def test_pipelined_requests_are_answered_in_order_before_the_runner_waits(self):
        path = self.folder.write("score.py", "def init(): pass\ndef run(data): return data\n")
        reads = [
            [load_frame(path), request_frame(2, "init")],
            [score_frame(3, body=b"a"), score_frame(4, body=b"\xff"), score_frame(5, body=b"c")],
            [score_frame(6, body=b"d")],
        ]
        output = io.BytesIO()
        answered_before_read = []

        class Pipe(io.BytesIO):
            """Hands out one batch of frames per read, as the server's writes arrive."""

            def read1(self, size=-1):
                answers = [m["id"] for m, _ in parse_output(output.getvalue()) if "method" not in m]
                answered_before_read.append(answers)
                return b"".join(reads.pop(0)) if reads else b""

        runner.serve(Pipe(), output)
        self.assertEqual(answered_before_read, [[], [1, 2], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6]])
        talk = Conversation(parse_output(output.getvalue()))
        self.assertEqual([talk.result(3)[1], talk.error(4)["data"]["kind"], talk.result(5)[1]], [b'"a"', "bad_input", b'"c"'])

    def test_answers_are_not_held_where_requests_are_slow(self):
        path = self.folder.write("score.py", """
            import time

            def init():
                pass

            def run(data):
                if data == "slow":
                    time.sleep(0.3)
                return data
        """)
        # Enough quick requests in a row for answers to be held; then a slow one, which
        # may keep the answers held before it; after it, answers are not held (40 is
        # written before the second slow request ends).
        frames = [load_frame(path), request_frame(2, "init")]
        frames += [score_frame(request_id, body=b"quick") for request_id in range(3, 33)]
        frames += [score_frame(33, body=b"slow"), score_frame(40, body=b"quick"), score_frame(41, body=b"slow")]
        output = TimedWriter()
        runner.serve(io.BytesIO(b"".join(frames)), output)
        written_at = {}
        for when, data in output.writes:
            for message, _ in parse_output(data):
                written_at.setdefault(message.get("id"), when)
        self.assertEqual(sorted(key for key in written_at if key is not None), list(range(1, 34)) + [40, 41])
        self.assertGreater(written_at[41] - written_at[40], 0.25)


class TimedWriter(io.BytesIO):
    """An output that notes when each write happened (frames are whole in each write here)."""

    def __init__(self):
        super().__init__()
        self.writes = []

    def write(self, data):
        self.writes.append((time.monotonic(), bytes(data)))
        return super().write(data)



class CommandLineTest(unittest.TestCase):
    def test_the_labels_are_read_in_both_spellings_and_the_rest_ignored(self):
        self.assertEqual(runner.parse_command_line(["--worker", "2", "--entry-script=/app/score.py", "--x", "y"]),
                         {"worker": "2", "entry_script": "/app/score.py"})
        self.assertEqual(runner.parse_command_line([]), {})
        self.assertEqual(runner.parse_command_line(["--worker"]), {})


if __name__ == "__main__":
    unittest.main()
