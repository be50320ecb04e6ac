"""The longer contract fuzz: the schemathesis run of tests/serving/test_contract.py (a real
server, both detectors, a key of each role, every operation of the served OpenAPI document,
positive and negative data) with a larger budget. Prints one JSON object: cases tried,
statuses, server errors (target 0) and check failures, with the machine's load average.

    .venv/bin/python benchmarks/bench_contract.py [--examples 300] [--seconds 1200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTCOME = "contract-fuzz-outcome "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=300,
                        help="examples per operation and generation mode")
    parser.add_argument("--seconds", type=float, default=1200, help="fuzzing time budget")
    args = parser.parse_args()
    load_at_start = os.getloadavg()
    env = {**os.environ, "ILLICITFLOWS_FUZZ_EXAMPLES": str(args.examples),
           "ILLICITFLOWS_FUZZ_SECONDS": str(args.seconds)}
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                          "tests/serving/test_contract.py::test_no_input_gets_a_server_error"],
                         cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=args.seconds + 1800)
    lines = [line for line in run.stdout.splitlines() if line.startswith(OUTCOME)]
    if not lines:
        sys.exit(f"no fuzzing outcome (pytest exit {run.returncode}):\n{run.stdout[-3000:]}")
    outcome = json.loads(lines[-1][len(OUTCOME):])
    statuses = {int(status): n for status, n in outcome["statuses"].items()}
    print(json.dumps({
        "cases": outcome["cases"], "statuses": statuses,
        "server_errors": sum(n for status, n in statuses.items() if status >= 500),
        "check_failures": outcome["failures"], "by_operation": outcome["by_operation"],
        "test_passed": run.returncode == 0, "seconds_with_setup": time.perf_counter() - started,
        "budget": {"examples": args.examples, "seconds": args.seconds},
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
    }, indent=2))


if __name__ == "__main__":
    main()
