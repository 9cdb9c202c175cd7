"""Framing: frames with payloads in, strict one-line JSON out, garbage survived."""

import io
import json
import math
import threading
import unittest

from tests import support  # noqa: F401  (puts the runner on sys.path)
from azmlinf_channel import INVALID_REQUEST, MAX_LINE_BYTES, PARSE_ERROR, BadFrame, Channel, ChannelClosed


def channel_reading(data):
    return Channel(io.BytesIO(data), io.BytesIO())


class ReadFrameTest(unittest.TestCase):
    def test_payload_is_read_exactly_even_with_newlines_in_it(self):
        payload = b"line one\nline two\n\x00\xff"
        data = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "score", "payload": len(payload)}).encode() + b"\n" + payload
        channel = channel_reading(data + b'{"jsonrpc":"2.0","method":"shutdown"}\n')
        frame = channel.read_frame()
        self.assertEqual((frame.method, frame.request_id, frame.payload), ("score", 1, payload))
        self.assertEqual(channel.read_frame().method, "shutdown")
        self.assertIsNone(channel.read_frame())

    def test_end_of_input_inside_a_payload_is_the_end(self):
        self.assertIsNone(channel_reading(b'{"id":1,"method":"score","payload":10}\nabc').read_frame())

    def test_blank_lines_are_skipped(self):
        self.assertEqual(channel_reading(b'\n\r\n{"method":"init","id":2}\n').read_frame().request_id, 2)

    def test_garbage_is_reported_with_the_id_when_visible(self):
        channel = channel_reading(b'not json "id": 12\n[1,2]\n{"method":"x","payload":-1,"id":3}\n{"id":4,"method":"init"}\n')
        with self.assertRaises(BadFrame) as first:
            channel.read_frame()
        self.assertEqual((first.exception.code, first.exception.request_id), (PARSE_ERROR, 12))
        with self.assertRaises(BadFrame) as second:
            channel.read_frame()
        self.assertEqual((second.exception.code, second.exception.request_id), (INVALID_REQUEST, None))
        with self.assertRaises(BadFrame) as third:
            channel.read_frame()
        self.assertEqual((third.exception.code, third.exception.request_id), (INVALID_REQUEST, 3))
        self.assertEqual(channel.read_frame().request_id, 4)

    def test_an_overlong_line_is_skipped_whole(self):
        channel = channel_reading(b"x" * (MAX_LINE_BYTES + 10) + b'\n{"id":5,"method":"init"}\n')
        with self.assertRaises(BadFrame):
            channel.read_frame()
        self.assertEqual(channel.read_frame().request_id, 5)


class SendTest(unittest.TestCase):
    def sent(self, *messages):
        output = io.BytesIO()
        channel = Channel(io.BytesIO(), output)
        for message, payload in messages:
            channel.send(message, payload)
        return output.getvalue()

    def test_payload_member_and_bytes_follow_the_line(self):
        data = self.sent(({"jsonrpc": "2.0", "id": 1, "result": {}}, b"body\n"))
        self.assertEqual(data, b'{"jsonrpc":"2.0","id":1,"result":{},"payload":5}\nbody\n')

    def test_strict_json_on_one_line(self):
        data = self.sent(({"params": {"nan": math.nan, "obj": object, "text": "a\nb\u2028", "bad": "\udcff"}}, b""))
        self.assertEqual(data.count(b"\n"), 1)
        params = json.loads(data)["params"]
        self.assertIsNone(params["nan"])
        self.assertEqual(params["obj"], "<class 'object'>")
        self.assertEqual(params["text"], "a\nb\u2028")
        self.assertEqual(params["bad"], "?")

    def test_threads_never_interleave_frames(self):
        output = io.BytesIO()
        channel = Channel(io.BytesIO(), output)

        def chatter(number):
            for index in range(200):
                channel.notify("log", {"thread": number, "index": index}, b"x" * (index % 7))

        threads = [threading.Thread(target=chatter, args=(number,)) for number in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        frames = support.parse_output(output.getvalue())
        self.assertEqual(len(frames), 1600)
        self.assertTrue(all(payload == b"x" * (message["params"]["index"] % 7) for message, payload in frames))

    def test_a_closed_server_end_is_channel_closed(self):
        class BrokenPipe(io.BytesIO):
            def write(self, data):
                raise BrokenPipeError(32, "Broken pipe")

        with self.assertRaises(ChannelClosed):
            Channel(io.BytesIO(), BrokenPipe()).notify("log", {})


if __name__ == "__main__":
    unittest.main()
