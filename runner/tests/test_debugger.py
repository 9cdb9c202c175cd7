"""debugger.py: a run() under a debugger is not cut by the scoring timeout, the server
hears when a debugger comes and goes, and listen mode without debugpy says how to
install it. debugpy is faked in sys.modules: the real one is driven by the server's
DAP tests (tests/integration/debugging.rs)."""

import sys
import types
import unittest

from _azmlinfsrv_runner.debugger import is_debugger_attached
from tests.support import Conversation, ScriptFolder, load_frame, request_frame, score_frame

SLOW_RUN = """
    import time

    def init():
        pass

    def run(data):
        time.sleep(0.4)
        return "finished"
"""


class FakeDebugpy(types.ModuleType):
    """What the runner asks of debugpy: whether a client is connected."""

    def __init__(self):
        super().__init__("debugpy")
        self.connected = False

    def is_client_connected(self):
        return self.connected


class DebuggerTest(unittest.TestCase):
    def setUp(self):
        self.folder = ScriptFolder()
        self.addCleanup(self.folder.remove)
        self.debugpy = FakeDebugpy()
        saved = sys.modules.get("debugpy")
        sys.modules["debugpy"] = self.debugpy

        def restore():
            if saved is None:
                sys.modules.pop("debugpy", None)
            else:
                sys.modules["debugpy"] = saved
        self.addCleanup(restore)

    def test_an_attached_debugger_suspends_the_scoring_timeout(self):
        self.debugpy.connected = True
        path = self.folder.write("score.py", SLOW_RUN)
        talk = Conversation.serve(load_frame(path, timeout_ms=100), request_frame(2, "init"), score_frame(3))
        self.assertEqual(talk.result(3)[1], b'"finished"')
        self.assertEqual(talk.notifications("debugger"), [({"attached": True}, b"")])

    def test_without_a_debugger_the_timeout_applies_and_nothing_is_said(self):
        path = self.folder.write("score.py", SLOW_RUN)
        talk = Conversation.serve(load_frame(path, timeout_ms=100), request_frame(2, "init"), score_frame(3))
        self.assertEqual(talk.error(3)["data"]["kind"], "timeout")
        self.assertEqual(talk.notifications("debugger"), [])

    def test_a_debugger_attaching_during_run_holds_the_timeout_back(self):
        source = SLOW_RUN.replace("time.sleep(0.4)", "sys.modules['debugpy'].connected = True; time.sleep(0.4)")
        path = self.folder.write("score.py", "import sys\n" + source.replace("\n    ", "\n"))
        talk = Conversation.serve(load_frame(path, timeout_ms=100), request_frame(2, "init"), score_frame(3))
        self.assertEqual(talk.result(3)[1], b'"finished"')
        # Sent from another thread when the alarm came, while run() went on sleeping.
        self.assertEqual(talk.notifications("debugger"), [({"attached": True}, b"")])

    def test_coverage_like_tracers_are_not_debuggers(self):
        sys.modules.pop("debugpy")
        previous = sys.gettrace()
        sys.settrace(lambda frame, event, arg: None)
        try:
            self.assertFalse(is_debugger_attached())
        finally:
            sys.settrace(previous)

    def test_listen_mode_without_debugpy_names_the_interpreter_and_the_fix(self):
        sys.modules["debugpy"] = None  # import debugpy raises ImportError
        path = self.folder.write("score.py", SLOW_RUN)
        talk = Conversation.serve(load_frame(path, debug={"mode": "listen", "port": 5678, "wait": False}))
        error = talk.error(1)
        self.assertEqual(error["data"]["kind"], "internal")
        self.assertIn("{} -m pip install debugpy".format(sys.executable), error["message"])


if __name__ == "__main__":
    unittest.main()
