"""Run by tests/unit/test_worker_fork.py in place of Flink's Python worker."""

import gc
import json
import os
import sys

if __name__ == "__main__":
    print(
        json.dumps(
            {
                "argv": sys.argv[1:],
                "cwd": os.getcwd(),
                "probe": os.environ.get("PROBE"),
                "warm": "riverflink.operators.functions" in sys.modules,
                "frozen": gc.get_freeze_count() > 0,
            }
        ),
        flush=True,
    )
    print("to stderr", file=sys.stderr)
    sys.exit(int(sys.argv[1]))
