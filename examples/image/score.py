# @rawhttp returning an image: run() draws a PNG (standard library only) and answers it
# with its own Content-Type. Any binary body works the same way.
#
#   curl -s "127.0.0.1:5001/score?size=64" -o gradient.png
import struct
import zlib

from azureml.contrib.services.aml_request import rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    size = int(request.args.get("size", "32"))
    if not 1 <= size <= 1024:
        return AMLResponse("size must be between 1 and 1024\n", 400, {"Content-Type": "text/plain"})
    return AMLResponse(gradient_png(size), 200, {"Content-Type": "image/png"})


def gradient_png(size):
    """A size x size RGB image: red grows to the right, blue downwards."""
    rows = b"".join(
        b"\x00" + bytes(value for x in range(size) for value in (x * 255 // size, 96, y * 255 // size))
        for y in range(size)
    )

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
