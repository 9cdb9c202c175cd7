# @input_schema with numpy and pandas types, and request_headers alongside: run()
# reports what the decorators made of the JSON body (numpy scalars converted to
# Python numbers before they are returned). Needs inference-schema, numpy and pandas.
import numpy as np
import pandas as pd
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


@input_schema("matrix", NumpyParameterType(np.array([[1.0, 2.0], [3.0, 4.0]])))
@input_schema("frame", PandasParameterType(pd.DataFrame({"name": ["a"], "score": [1.5]})))
@input_schema("factor", StandardPythonParameterType(2))
@output_schema(StandardPythonParameterType({"total": 1.0}))
def run(matrix, frame, request_headers, factor=3):
    return {
        "matrix_type": type(matrix).__name__,
        "dtype": str(matrix.dtype),
        "shape": list(matrix.shape),
        "total": float(matrix.sum()) * factor,
        "frame_type": type(frame).__name__,
        "columns": list(frame.columns),
        "names": frame["name"].tolist(),
        "score_sum": frame["score"].sum().item(),
        "rows": np.int64(len(frame)).item(),
        "factor": factor,
        "custom_header": request_headers.get("X-Custom"),
    }
