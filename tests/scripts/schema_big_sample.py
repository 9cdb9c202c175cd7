# @input_schema with a 400x400 float sample: the `load` answer carries several MB of
# OpenAPI schemas (the example is the whole sample). Needs inference-schema and numpy.
import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.schema_decorators import input_schema

SAMPLE = np.random.default_rng(9).random((400, 400))


def init():
    pass


@input_schema("matrix", NumpyParameterType(SAMPLE))
def run(matrix):
    return {"shape": list(matrix.shape)}
