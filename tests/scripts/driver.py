# A generated "driver" script, as some Azure SDKs write them: its init() does work of
# its own, and `driver_module` is the real score script, whose run() the server calls.
import driver_target as driver_module


def init():
    driver_module.init()
    print("DRIVER-INIT-RAN")


def run(data):
    return {"from": "the driver's run(), which the server must not call"}
