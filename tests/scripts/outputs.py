# Returns values whose JSON text the contract pins byte for byte (json.dumps defaults).
# The body names the case.
import json
import math


def init():
    pass


def run(data):
    case = json.loads(data)["case"]
    if case == "special_floats":
        return {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "tenth": 0.1, "small": 1e-7, "big": 2 ** 70}
    if case == "non_ascii":
        return {"text": "caf\u00e9 \u2615 \u65e5\u672c \U0001f600", "ctrl": "tab\tquote\"back\\slash\n"}
    if case == "nested":
        return {"list": [1, 2.5, None, True, False, {"deep": [[], {}]}], "tuple": (1, "two"), 3: "int key"}
    if case == "numpy_converted":
        import numpy as np

        return {
            "float32": np.float32(0.1).item(),
            "int64": np.int64(7).item(),
            "array": np.arange(3).tolist(),
            "matrix": np.array([[1.5, np.nan], [np.inf, -0.0]]).tolist(),
            "bool": np.bool_(True).item(),
        }
    if case == "numpy_unconverted":
        import numpy as np

        return {"int64": np.int64(7)}
    if case == "numpy_float64_unconverted":
        import numpy as np

        # np.float64 is a subclass of float: json.dumps writes it as it is.
        return {"float64": np.float64(0.5)}
    if case == "none":
        return None
    raise ValueError("unknown case " + case)
