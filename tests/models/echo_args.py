"""A command model that reports the arguments it received, to prove nothing was executed."""

import json
import os
import sys

with open(os.environ["MEXPLORE_RESULT_FILE"], "w") as out:
    json.dump({"objective": float(len(sys.argv)), "argv": sys.argv[1:],
               "cwd": os.getcwd(), "task_dir": os.environ["MEXPLORE_TASK_DIR"],
               "gpu": os.environ.get("CUDA_VISIBLE_DEVICES")}, out)
