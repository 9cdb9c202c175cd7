"""The recorded frames in runner/frames/ replayed through the runner."""

import glob
import json
import os
import unittest

from tests import frames_tool
from tests.support import runner, without_flask


class RecordedFramesTest(unittest.TestCase):
    def assert_replays(self, name):
        recorded = frames_tool.read_records(name)
        to_runner = [record for record in recorded if record["direction"] == "to_runner"]
        replayed = frames_tool.replay_scenario_records(name, to_runner)
        expected, actual = frames_tool.comparable(recorded), frames_tool.comparable(replayed)
        for index, (want, got) in enumerate(zip(expected, actual)):
            self.assertEqual(want, got, "{}.jsonl: frame {} from the runner differs".format(name, index))
        self.assertEqual(len(expected), len(actual), "{}.jsonl: number of frames from the runner".format(name))

    def test_every_file_has_a_scenario_and_the_format_of_the_protocol(self):
        names = sorted(os.path.basename(path)[:-len(".jsonl")] for path in glob.glob(frames_tool.frames_path("*")))
        self.assertEqual(names, sorted(frames_tool.SCENARIOS))
        for name in names:
            with open(frames_tool.frames_path(name), encoding="utf-8") as records_file:
                for line in records_file:
                    record = json.loads(line)
                    self.assertIn(record["direction"], ("to_runner", "from_runner"))
                    self.assertTrue(("frame" in record) != ("line" in record), line)
                    if "frame" in record:
                        self.assertEqual(record["frame"]["jsonrpc"], "2.0")
                        self.assertEqual(record["frame"].get("payload", 0) > 0, "payload_b64" in record, line)

    def test_the_first_frame_is_hello(self):
        first = frames_tool.read_records("hello")[0]
        self.assertEqual(first["frame"]["method"], "hello")
        self.assertEqual(first["frame"]["params"]["protocol"], runner.PROTOCOL_VERSION)

    def test_hello(self):
        self.assert_replays("hello")

    def test_load_init(self):
        self.assert_replays("load_init")

    def test_score(self):
        self.assert_replays("score")

    def test_request_headers(self):
        self.assert_replays("request_headers")

    def test_score_errors(self):
        self.assert_replays("score_errors")

    def test_load_errors(self):
        self.assert_replays("load_errors")

    def test_logs(self):
        self.assert_replays("logs")

    def test_streaming(self):
        self.assert_replays("streaming")

    def test_rawhttp(self):
        self.assert_replays("rawhttp")

    def test_bad_frames(self):
        self.assert_replays("bad_frames")

    def test_rawhttp_without_flask(self):
        # The stdlib stand-in request gives the script the very same answers.
        with without_flask():
            self.assert_replays("rawhttp")

    def test_schema(self):
        self.assert_replays("schema")


if __name__ == "__main__":
    unittest.main()
