# The documentation's end-to-end example: init() loads a scikit-learn regression model
# from the model folder (AZUREML_MODEL_DIR, set by --model_dir), run() scores the rows
# of a JSON body such as sample-request.json. Run from examples/e2e:
#
#   azmlinfsrv --entry_script ./onlinescoring/score.py --model_dir ./
#   curl --request POST "127.0.0.1:5001/score" --header "Content-Type:application/json" --data @sample-request.json
#
# Needs: pip install -r requirements.txt (scikit-learn, which brings joblib and numpy).
import json
import logging
import os

import joblib
import numpy

model = None


def init():
    global model
    # AZUREML_MODEL_DIR is the model folder; the model file sits under model/ in it.
    model_path = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model/sklearn_regression_model.pkl")
    model = joblib.load(model_path)
    logging.info("Init complete")


def run(raw_data):
    logging.info("model 1: request received")
    data = numpy.array(json.loads(raw_data)["data"])
    result = model.predict(data)
    logging.info("Request processed")
    return result.tolist()
