"""`python runner.py` as the server starts it: real pipes, real file descriptors."""

import json
import os
import signal
import subprocess
import sys
import time
import unittest

from tests.support import (
    FLASK_HIDING_PATH,
    RUNNER_DIR,
    Conversation,
    ScriptFolder,
    load_frame,
    request_frame,
    run_runner_process,
    score_frame,
)


def kill_pid_in(path):
    """Kill the process whose pid a test's script wrote to `path`, if it is still there."""
    try:
        with open(path) as pid_file:
            os.kill(int(pid_file.read()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


class RunnerProcessTest(unittest.TestCase):
    def setUp(self):
        self.folder = ScriptFolder()
        self.addCleanup(self.folder.remove)

    def run_script(self, source, *frames, env=None, python=sys.executable, timeout=30):
        path = self.folder.write("score.py", source)
        data = b"".join([load_frame(path), request_frame(2, "init")] + list(frames))
        returncode, output, stderr = run_runner_process(data, cwd=self.folder.path, env=env, python=python,
                                                        timeout=timeout)
        return returncode, Conversation(output), stderr

    def test_the_worker_labels_are_accepted_and_the_script_sees_its_own_argv(self):
        path = self.folder.write("score.py", """
import sys
ARGV_AT_IMPORT = list(sys.argv)
def init(): pass
def run(data):
    return {"at_import": ARGV_AT_IMPORT, "in_run": sys.argv}
""")
        data = load_frame(path) + request_frame(2, "init") + score_frame(3)
        returncode, output, stderr = run_runner_process(
            data, cwd=self.folder.path, args=["--worker", "3", "--entry-script", path, "--unknown-option"])
        self.assertEqual(returncode, 0, stderr)
        answer = json.loads(Conversation(output).result(3)[1])
        self.assertEqual(answer, {"at_import": [path], "in_run": [path]})

    def test_user_output_never_reaches_the_protocol_channel(self):
        returncode, talk, stderr = self.run_script("""
            import os, subprocess, sys

            def init():
                os.write(1, b"raw write to fd 1\\n")
                sys.__stdout__.write("original stdout\\n")
                sys.__stdout__.flush()
                subprocess.run([sys.executable, "-c", "print('child process output')"], check=True)
                subprocess.run([sys.executable, "-c", "print('child given sys.stdout')"], stdout=sys.stdout, check=True)
                print("printed", flush=True)

            def run(data):
                return {"stdin": sys.stdin.read()}
        """, score_frame(3, body=b"x"))
        self.assertEqual(returncode, 0)
        self.assertEqual(talk.result(2), ({}, b""))
        self.assertEqual(json.loads(talk.result(3)[1]), {"stdin": ""})
        self.assertEqual(talk.log_messages("azmlinfsrv.print"), ["printed"])
        for text in ("raw write to fd 1", "original stdout", "child process output", "child given sys.stdout"):
            self.assertIn(text, stderr)

    def test_a_child_forked_in_run_does_not_keep_the_channel_open(self):
        # The child outlives the runner; the server must still see the end of the
        # channel at once (its stderr is pointed away, so only the protocol could hold it).
        pid_file = os.path.join(self.folder.path, "child.pid")
        self.addCleanup(kill_pid_in, pid_file)
        started = time.monotonic()
        returncode, talk, stderr = self.run_script("""
            import os, time

            def init(): pass

            def run(data):
                if os.fork() == 0:
                    null = os.open(os.devnull, os.O_RDWR)
                    os.dup2(null, 1)
                    os.dup2(null, 2)
                    with open({pid_file!r}, "w") as pid_file:
                        pid_file.write(str(os.getpid()))
                    time.sleep(30)
                    os._exit(0)
                os._exit(3)
        """.format(pid_file=pid_file), score_frame(3), timeout=15)
        self.assertEqual(returncode, 3, stderr)
        self.assertLess(time.monotonic() - started, 15)
        self.assertEqual(talk.result(2), ({}, b""))
        self.assertEqual([message.get("id") for message, _ in talk.frames if "method" not in message], [1, 2])

    def test_a_forked_child_that_returns_into_the_runner_never_answers(self):
        returncode, talk, stderr = self.run_script("""
            import logging, os

            def init(): pass

            def run(data):
                if data != "fork":
                    return {"pid": os.getpid()}
                pid = os.fork()
                if pid == 0:
                    print("printed in the child")
                    logging.getLogger("child").warning("logged in the child")
                    return {"from": "the child"}
                _, status = os.waitpid(pid, 0)
                return {"from": "the parent", "child_exit_status": status}
        """, score_frame(3, body=b"fork"), score_frame(4, body=b"again"))
        self.assertEqual(returncode, 0, stderr)
        self.assertEqual(json.loads(talk.result(3)[1]), {"from": "the parent", "child_exit_status": 0})
        self.assertIn("pid", json.loads(talk.result(4)[1]))
        self.assertEqual([message.get("id") for message, _ in talk.frames if "method" not in message], [1, 2, 3, 4])
        self.assertEqual(talk.log_messages("azmlinfsrv.print"), [])
        for text in ("INFO azmlinfsrv.print: printed in the child", "WARNING child: logged in the child",
                     "returned into the runner's loop"):
            self.assertIn(text, stderr)

    def test_rawhttp_gets_flask_s_request_or_the_stand_in_without_flask(self):
        source = """
            from azureml.contrib.services.aml_request import rawhttp
            from azureml.contrib.services.aml_response import AMLResponse

            def init(): pass

            @rawhttp
            def run(request):
                response_base = AMLResponse.__mro__[2]
                return {"request": type(request).__module__ + "." + type(request).__name__, "response": response_base.__module__ + "." + response_base.__name__,
                        "headers": dict(request.headers), "json": request.get_json()}
        """
        frame = score_frame(3, body=b'{"k": 1}', headers=[("Content-Type", "application/json"), ("X-H2O-Id", "h")])
        views = {}
        for name, env in (("flask", None), ("stand-in", dict(os.environ, PYTHONPATH=FLASK_HIDING_PATH))):
            returncode, talk, stderr = self.run_script(source, frame, env=env)
            self.assertEqual(returncode, 0, stderr)
            views[name] = json.loads(talk.result(3)[1])
        self.assertEqual((views["flask"]["request"], views["stand-in"]["request"]),
                         ("flask.wrappers.Request", "_azmlinfsrv_runner.http.Request"))
        self.assertEqual((views["flask"]["response"], views["stand-in"]["response"]),
                         ("flask.wrappers.Response", "_azmlinfsrv_runner.http.Response"))
        for view in views.values():
            self.assertEqual((view["headers"], view["json"]),
                             ({"Content-Type": "application/json", "X-H2O-Id": "h"}, {"k": 1}))

    def test_exits_at_end_of_input_despite_threads_and_runs_atexit(self):
        started = time.monotonic()
        returncode, talk, stderr = self.run_script("""
            import atexit, sys, threading, time

            def init():
                threading.Thread(target=time.sleep, args=(60,)).start()
                atexit.register(lambda: sys.stderr.write("atexit handler ran\\n"))

            def run(data):
                return data
        """)
        self.assertEqual(returncode, 0)
        self.assertLess(time.monotonic() - started, 10)
        self.assertIn("atexit handler ran", stderr)
        self.assertEqual(talk.result(2), ({}, b""))

    def test_logging_json_in_the_app_root_is_applied(self):
        self.folder.write("logging.json", json.dumps({
            "version": 1, "disable_existing_loggers": False,
            "loggers": {"quiet": {"level": "ERROR"}},
        }))
        _, talk, _ = self.run_script("""
            import logging

            def init():
                logging.getLogger("quiet").warning("filtered out")
                logging.getLogger("loud").warning("kept")

            def run(data):
                return data
        """)
        self.assertEqual([record["message"] for record in talk.logs() if record["logger"] in ("quiet", "loud")], ["kept"])
        self.assertIn("Loaded logging config from {}".format(os.path.join(self.folder.path, "logging.json")),
                      talk.log_messages("azmlinfsrv"))

    def test_a_real_azureml_package_is_kept(self):
        self.folder.write("azureml/__init__.py", "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n")
        self.folder.write("azureml/core/__init__.py", "NAME = 'the user s azureml.core'\n")
        self.folder.write("azureml/contrib/__init__.py", "")
        self.folder.write("azureml/contrib/services/__init__.py", "raise RuntimeError('never imported')\n")
        self.folder.write("azureml/contrib/services/other.py", "NAME = 'sibling module'\n")
        _, talk, stderr = self.run_script("""
            import azureml.core
            import azureml.contrib.services.aml_request as aml_request
            from azureml.contrib.services import other

            def init(): pass

            def run(data):
                return [azureml.core.NAME, aml_request.__name__, other.NAME]
        """, score_frame(3))
        self.assertEqual(json.loads(talk.result(3)[1]), ["the user s azureml.core", "_azmlinfsrv_runner.aml_request", "sibling module"], stderr)

    def test_ctrl_c_does_not_interrupt_run(self):
        path = self.folder.write("score.py", """
import time
def init(): pass
def run(data):
    print("started")
    time.sleep(0.5)
    return "finished"
""")
        process = subprocess.Popen([sys.executable, os.path.join(RUNNER_DIR, "runner.py")], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.folder.path)
        try:
            process.stdin.write(load_frame(path) + request_frame(2, "init") + score_frame(3))
            process.stdin.flush()
            for line in iter(process.stdout.readline, b""):
                if b'"message":"started"' in line:
                    break
            process.send_signal(signal.SIGINT)
            answer = json.loads(process.stdout.readline())
            self.assertEqual(answer["id"], 3)
            self.assertEqual(process.stdout.read(answer["payload"]), b'"finished"')
        finally:
            process.stdin.close()
            self.assertEqual(process.wait(10), 0)
            process.stdout.close()
            process.stderr.close()

    def test_a_large_body_crosses_both_ways_untouched(self):
        body = bytes(range(256)) * 40000  # 10 MB, every byte value
        _, talk, _ = self.run_script("""
            from azureml.contrib.services.aml_request import rawhttp
            from azureml.contrib.services.aml_response import AMLResponse

            def init(): pass

            @rawhttp
            def run(request):
                return AMLResponse(request.get_data(), 200, {"Content-Type": "application/octet-stream"})
        """, score_frame(3, body=body))
        self.assertEqual(talk.result(3)[1], body)

    def test_debugger_that_cannot_be_reached_fails_the_load(self):
        path = self.folder.write("score.py", "def init(): pass\ndef run(data): return data\n")
        env = dict(os.environ, AZUREML_DEBUG_PORT="1")  # nothing listens on port 1
        _, output, _ = run_runner_process(load_frame(path), cwd=self.folder.path, env=env, timeout=60)
        error = Conversation(output).error(1)
        self.assertEqual(error["data"]["kind"], "internal")
        self.assertTrue(error["message"].startswith("Cannot connect to a debugger"), error["message"])
        self.assertIn("Starting the inference server in DEBUGGING mode because AZUREML_DEBUG_PORT is set.",
                      Conversation(output).log_messages("azmlinfsrv")[0])


class InferenceSchemaProcessTest(unittest.TestCase):
    """Each in a runner of its own: inference-schema's registry is process-wide."""

    def setUp(self):
        self.folder = ScriptFolder()
        self.addCleanup(self.folder.remove)

    def load(self, source):
        path = self.folder.write("score.py", source)
        _, output, _ = run_runner_process(load_frame(path), cwd=self.folder.path)
        return Conversation(output)

    def test_schemas_of_a_decorated_run(self):
        talk = self.load("""
            from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
            from inference_schema.schema_decorators import input_schema

            def init(): pass

            @input_schema("data", StandardPythonParameterType({"a": 1}))
            def run(data, request_headers):
                return data
        """)
        result, _ = talk.result(1)
        self.assertEqual(result["input_mode"], "schema")
        # As in the reference: whatever inference-schema reports for run(), as it is.
        self.assertEqual(result["schemas"]["3.1"]["input"]["example"]["data"], {"a": 1})
        self.assertEqual(result["schemas"]["2"]["output"], {"type": "object"})
        self.assertIn("run() is decorated with @input_schema. Server will invoke it with the following arguments: data.",
                      talk.log_messages())

    def test_versions_the_types_cannot_express_are_null(self):
        talk = self.load("""
            from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
            from inference_schema.schema_decorators import input_schema

            def init(): pass

            @input_schema("data", StandardPythonParameterType([1, "mixed"]))
            def run(data):
                return data
        """)
        schemas = talk.result(1)[0]["schemas"]
        self.assertIsNone(schemas["2"])
        self.assertIsNotNone(schemas["3"])

    def test_rawhttp_with_input_schema_is_refused(self):
        talk = self.load("""
            from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
            from inference_schema.schema_decorators import input_schema
            from azureml.contrib.services.aml_request import rawhttp

            def init(): pass

            @rawhttp
            @input_schema("data", StandardPythonParameterType({"a": 1}))
            def run(data):
                return data
        """)
        error = talk.error(1)
        self.assertEqual((error["data"]["kind"], error["message"]),
                         ("bad_script", "run() cannot be decorated with both @rawhttp and @input_schema"))


if __name__ == "__main__":
    unittest.main()
