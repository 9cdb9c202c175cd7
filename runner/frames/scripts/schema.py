# Frames fixture: @input_schema (needs the inference-schema package).
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


@input_schema("data", StandardPythonParameterType({"a": 1}))
@input_schema("factor", StandardPythonParameterType(2))
@output_schema(StandardPythonParameterType({"a": 2}))
def run(data, factor=2):
    return {"a": data["a"] * factor}
