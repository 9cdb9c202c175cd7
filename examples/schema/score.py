# @input_schema: the server parses the JSON body and passes each parameter of run() by
# name, converted to the declared type (here a numpy array); a parameter the body
# leaves out takes its default. /swagger.json describes the input and the output.
#
# Needs: pip install inference-schema numpy
#
#   curl -s 127.0.0.1:5001/score -H "Content-Type: application/json" \
#        -d '{"data": [[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]], "scale": 2.0}'
import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema

weights = None


def init():
    global weights
    weights = np.array([0.5, -1.0, 2.0])  # a real script loads its model here


@input_schema("data", NumpyParameterType(np.array([[1.0, 2.0, 3.0]])))
@input_schema("scale", StandardPythonParameterType(1.0))
@output_schema(StandardPythonParameterType({"predictions": [4.5]}))
def run(data, scale=1.0):
    predictions = data @ weights * scale
    # numpy values are not JSON: convert them to Python numbers before returning.
    return {"predictions": predictions.tolist()}
