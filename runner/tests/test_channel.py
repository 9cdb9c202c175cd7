"""Framing: frames with payloads in, strict one-line JSON out, garbage survived."""

import io
import json
import math
import os
import threading
import time
import unittest

from tests import support  # noqa: F401  (puts the runner on sys.path)
from _azmlinfsrv_runner.channel import INVALID_REQUEST, MAX_LINE_BYTES, PARSE_ERROR, BadFrame, Channel, ChannelClosed


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

    def test_a_line_of_the_largest_size_is_read(self):
        line = b'{"id":6,"method":"init","pad":"' + b"x" * (MAX_LINE_BYTES - 40) + b'"}'
        line += b" " * (MAX_LINE_BYTES - len(line)) + b"\n"  # MAX_LINE_BYTES and its newline
        channel = channel_reading(line + b'{"id":7,"method":"init"}\n')
        self.assertEqual(channel.read_frame().request_id, 6)
        self.assertEqual(channel.read_frame().request_id, 7)
        channel = channel_reading(b" " + line + b'{"id":7,"method":"init"}\n')
        with self.assertRaises(BadFrame):
            channel.read_frame()
        self.assertEqual(channel.read_frame().request_id, 7)

    def test_the_last_line_may_lack_its_newline(self):
        self.assertEqual(channel_reading(b'{"id":8,"method":"init"}').read_frame().request_id, 8)

    def test_frames_cut_anywhere_by_the_reads_come_out_the_same(self):
        frames = [
            (b'{"jsonrpc":"2.0","id":1,"method":"score","payload":5}\n', b"ab\ncd"),
            (b"\r\n", b""),
            (b' {"id":2,"method":"score","payload":3} \n', b"\xff\x00\n"),
            (b'{"id":3,"method":"init","params":{"t":"\xc3\xa9"}}\n', b""),
            (b'not json "id": 4\n', b""),
            (b'{"id":5,"method":"score","payload":2000}\n', bytes(range(256)) * 7 + b"x" * 208),
            (b'{"id":6,"method":"shutdown"}\n', b""),
        ]
        data = b"".join(line + payload for line, payload in frames)
        expected = read_everything(Channel(io.BytesIO(data), io.BytesIO()))
        self.assertEqual([item[0] for item in expected], [1, 2, 3, "bad 4", 5, 6])
        for step in (1, 2, 3, 7, 64, 1000):
            with self.subTest(step=step):
                self.assertEqual(read_everything(Channel(Trickle(data, step), io.BytesIO())), expected)


class Trickle(io.RawIOBase):
    """An input that hands out at most `step` bytes per read, like a slow pipe."""

    def __init__(self, data, step):
        super().__init__()
        self._data = io.BytesIO(data)
        self._step = step

    def readable(self):
        return True

    def readinto(self, buffer):
        chunk = self._data.read(min(len(buffer), self._step))
        buffer[:len(chunk)] = chunk
        return len(chunk)

    def read1(self, size=-1):
        return self.read(size)


def read_everything(channel):
    frames = []
    while True:
        try:
            frame = channel.read_frame()
        except BadFrame as bad_frame:
            frames.append(("bad {}".format(bad_frame.request_id), bad_frame.code))
            continue
        if frame is None:
            return frames
        frames.append((frame.request_id, frame.method, frame.payload))


class AnswersLeaveAtOnceTest(unittest.TestCase):
    """Every frame is written when sent: the server relies on it (PROTOCOL.md, "Messages")."""

    def test_an_answer_is_written_before_the_next_request_is_taken(self):
        output = io.BytesIO()
        channel = Channel(io.BytesIO(b'{"id":1,"method":"a"}\n{"id":2,"method":"b"}\n'), output)
        channel.respond(channel.read_frame().request_id, {}, b"one")
        # The next request is already buffered: the answer did not wait for it.
        self.assertEqual(support.parse_output(output.getvalue()), [({"jsonrpc": "2.0", "id": 1, "result": {}, "payload": 3}, b"one")])
        channel.respond(channel.read_frame().request_id, {}, b"x" * 100000)
        self.assertEqual([p for _, p in support.parse_output(output.getvalue())], [b"one", b"x" * 100000])

    def test_a_small_frame_is_one_write(self):
        writes = []

        class Output(io.BytesIO):
            def write(self, data):
                writes.append(bytes(data))
                return super().write(data)

        Channel(io.BytesIO(), Output()).respond(1, {}, b"body")
        self.assertEqual(writes, [b'{"jsonrpc":"2.0","id":1,"result":{},"payload":4}\nbody'])


def cancel(request_id):
    return ('{"jsonrpc":"2.0","method":"cancel","params":{"id":%d}}\n' % request_id).encode()


class CancelLookAheadTest(unittest.TestCase):
    """cancel_requested(): a `cancel` seen between chunks, without blocking or losing frames."""

    def test_a_buffered_cancel_is_found_and_other_frames_kept_in_order(self):
        data = (b'{"id":1,"method":"score"}\n{"id":2,"method":"score","payload":3}\nabc'
                + cancel(9) + b"not json\n" + cancel(1) + b'{"id":3,"method":"score"}\n')
        channel = channel_reading(data)
        self.assertEqual(channel.read_frame().request_id, 1)
        self.assertTrue(channel.cancel_requested(1))
        self.assertFalse(channel.cancel_requested(1), "a cancel is consumed once")
        frame = channel.read_frame()
        self.assertEqual((frame.request_id, frame.payload), (2, b"abc"))
        stale = channel.read_frame()
        self.assertEqual((stale.method, stale.params), ("cancel", {"id": 9}))
        with self.assertRaises(BadFrame):
            channel.read_frame()
        self.assertEqual(channel.read_frame().request_id, 3)
        self.assertIsNone(channel.read_frame())

    def test_no_cancel_means_no_wait_on_a_pipe_with_nothing_to_read(self):
        read_end, write_end = os.pipe()
        self.addCleanup(os.close, write_end)
        with os.fdopen(read_end, "rb", buffering=0) as rfile:
            channel = Channel(rfile, io.BytesIO())
            started = time.monotonic()
            self.assertFalse(channel.cancel_requested(1))
            self.assertLess(time.monotonic() - started, 1.0)

    def test_a_cancel_arriving_on_the_pipe_is_seen_behind_a_large_body_being_written(self):
        read_end, write_end = os.pipe()
        body = bytes(range(256)) * 4096  # 1 MiB: more than a pipe holds
        data = (b'{"id":1,"method":"score"}\n' + b'{"id":2,"method":"score","payload":%d}\n' % len(body)
                + body + cancel(1) + b'{"id":3,"method":"init"}\n')
        writer = threading.Thread(target=write_and_close, args=(write_end, data))
        writer.start()
        self.addCleanup(writer.join)
        with os.fdopen(read_end, "rb", buffering=0) as rfile:
            channel = Channel(rfile, io.BytesIO())
            self.assertEqual(channel.read_frame().request_id, 1)
            deadline = time.monotonic() + 20
            while not channel.cancel_requested(1):
                self.assertLess(time.monotonic(), deadline, "the cancel was never seen")
                time.sleep(0.001)
            frame = channel.read_frame()
            self.assertEqual((frame.request_id, frame.payload), (2, body))
            self.assertEqual(channel.read_frame().request_id, 3)
            self.assertIsNone(channel.read_frame())

    def test_a_payload_still_arriving_is_finished_by_read_frame(self):
        read_end, write_end = os.pipe()
        body = b"y" * 300000
        head = b'{"id":1,"method":"score"}\n{"id":2,"method":"score","payload":%d}\n' % len(body)
        os.write(write_end, head + body[:1000])
        with os.fdopen(read_end, "rb", buffering=0) as rfile:
            channel = Channel(rfile, io.BytesIO())
            self.assertEqual(channel.read_frame().request_id, 1)
            self.assertFalse(channel.cancel_requested(1))
            writer = threading.Thread(target=write_and_close, args=(write_end, body[1000:]))
            writer.start()
            self.addCleanup(writer.join)
            frame = channel.read_frame()
            self.assertEqual((frame.request_id, frame.payload), (2, body))
            self.assertIsNone(channel.read_frame())


def write_and_close(fd, data):
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


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
