"""A stand-in for Prefect's engine in tests/test_warm.py: reports what it was run with.

`python -m tests.warm_probe report CODE` prints its arguments, working folder, process and
parent process ids and `PROBE_VALUE`, writes a line to stderr and exits with CODE; `... sleep PIDFILE` writes its
pid to PIDFILE and sleeps until it is signalled.
"""

import json
import os
import sys
import time

if __name__ == "__main__":
    action, argument = sys.argv[1:3]
    if action == "report":
        report = {
            "argv": sys.argv[1:],
            "cwd": os.getcwd(),
            "pid": os.getpid(),
            "parent": os.getppid(),
            "value": os.environ.get("PROBE_VALUE"),
        }
        print(json.dumps(report), flush=True)
        print("probe on stderr", file=sys.stderr, flush=True)
        sys.exit(int(argument))
    with open(argument, "w") as pidfile:
        pidfile.write(str(os.getpid()))
    time.sleep(600)
