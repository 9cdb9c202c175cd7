# Reports the environment the script runs in, and misbehaves on request. The body is
# JSON: {"case": ...}. Cases: "environment", "log_levels", "sleep" (+"seconds"),
# "swallow_timeout" (+"seconds"), "sys_exit", "import" (+"module").
import importlib
import json
import logging
import os
import sys
import time

ENVIRONMENT_KEYS = [
    "AML_APP_ROOT", "AZUREML_ENTRY_SCRIPT", "AZUREML_MODEL_DIR", "AZUREML_CONFIG_FILE",
    "SERVER_PORT", "HEALTH_PORT", "WORKER_COUNT", "HTTP_X_MS_SERVER_VERSION",
    "AML_APP_INSIGHTS_ENABLED", "AML_CORS_ORIGINS", "SERVICE_NAME", "WORKER_TIMEOUT",
]


def init():
    logger = logging.getLogger("compat.probe")
    logger.debug("PROBE-DEBUG-FROM-INIT")
    logger.info("PROBE-INFO-FROM-INIT")
    logger.warning("PROBE-WARNING-FROM-INIT")


def run(data):
    request = json.loads(data) if data.startswith("{") else {"case": "environment"}
    case = request["case"]
    if case == "environment":
        return {
            "env": {key: os.environ.get(key) for key in ENVIRONMENT_KEYS},
            "sys_path": sys.path,
            "cwd": os.getcwd(),
            "root_level": logging.getLogger().getEffectiveLevel(),
        }
    if case == "sleep":
        time.sleep(request["seconds"])
        return {"slept": request["seconds"]}
    if case == "swallow_timeout":
        try:
            time.sleep(request["seconds"])
        except Exception:
            return {"swallowed": True}
        return {"swallowed": False}
    if case == "sys_exit":
        sys.exit(4)
    if case == "import":
        module = importlib.import_module(request["module"])
        return {"module": module.__name__, "file": module.__file__, "value": getattr(module, "VALUE", None)}
    raise ValueError("unknown case " + case)
