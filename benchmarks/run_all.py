"""Run every benchmark in this folder and fail if any misses its target."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n=== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)], check=False).returncode != 0:
            failed.append(script.name)
    if failed:
        print("\nFailed: " + ", ".join(failed))
        return 1
    print("\nAll benchmarks met their targets.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
