"""A command model that misbehaves on purpose, chosen by its `mode` parameter.

Run as: python misbehave.py PARAMS_FILE
"""

import json
import os
import signal
import subprocess
import sys
import time

params = json.load(open(sys.argv[1]))
mode = params["mode"]
result_file = os.environ["MEXPLORE_RESULT_FILE"]

if mode == "ok":
    with open(result_file, "w") as out:
        json.dump({"objective": 1.0, "answer": 42}, out)
elif mode == "stdout":
    print("some chatter")
    print("MEXPLORE_RESULT 1.0")
    print("MEXPLORE_RESULT 2.5")
elif mode == "exit1":
    print("about to fail", file=sys.stderr)
    sys.exit(1)
elif mode == "segv":
    os.kill(os.getpid(), signal.SIGSEGV)
elif mode == "hang":
    child = subprocess.Popen(["sleep", "1000"])
    with open("child.pid", "w") as out:
        out.write(str(child.pid))
    time.sleep(1000)
elif mode == "garbage":
    noise = os.urandom(1 << 20)
    for _ in range(40):  # 40 MB on each stream
        sys.stdout.buffer.write(noise)
        sys.stderr.buffer.write(noise)
    sys.stdout.buffer.write(b"\nMEXPLORE_RESULT 3.0\n")
elif mode == "nan":
    print("MEXPLORE_RESULT nan")
elif mode == "noresult":
    print("done, but I forgot to say how it went")
elif mode == "unparsable":
    with open(result_file, "w") as out:
        out.write("loss: low")
elif mode == "report":
    for step in range(3):
        print(f"MEXPLORE_REPORT {step} {1.0 / (step + 1)}", flush=True)
    print("MEXPLORE_REPORT not-a-number")
    print("MEXPLORE_RESULT 0.25")
elif mode == "flaky":
    if os.environ["MEXPLORE_ATTEMPT"] == "0":
        sys.exit(3)
    print("MEXPLORE_RESULT 4.0")
else:
    raise SystemExit(f"unknown mode {mode}")
