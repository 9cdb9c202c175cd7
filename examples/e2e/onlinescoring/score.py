# An end-to-end scoring script: init() loads a model file from AZUREML_MODEL_DIR,
# run() scores a JSON body such as {"data": [[1, 2, 3], [4, 5, 6]]}.
import json
import logging
import os

model = None


def init():
    global model
    model_path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "linear_model.json")
    with open(model_path, encoding="utf-8") as model_file:
        model = json.load(model_file)
    logging.info("Loaded model %s from %s", model["name"], model_path)


def run(raw_data):
    rows = json.loads(raw_data)["data"]
    predictions = [
        sum(weight * value for weight, value in zip(model["weights"], row)) + model["bias"]
        for row in rows
    ]
    return {"predictions": predictions, "model": model["name"]}
