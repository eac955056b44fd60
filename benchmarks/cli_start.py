"""CLI start-up time: median wall time of `healthhut --help` beside `python -c pass` on the same machine.

Target (issue 2): `healthhut --help` under 250 ms. Run: .venv/bin/python benchmarks/cli_start.py [runs]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path


def median_ms(command: list[str], runs: int) -> float:
    subprocess.run(command, check=True, capture_output=True)  # warm the page cache once
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    healthhut = str(Path(sys.executable).with_name("healthhut"))
    help_ms = median_ms([healthhut, "--help"], runs)
    floor_ms = median_ms([sys.executable, "-c", "pass"], runs)
    print(f"healthhut --help   median {help_ms:7.1f} ms over {runs} runs (target < 250 ms)")
    print(f"python -c pass     median {floor_ms:7.1f} ms over {runs} runs")
    print(f"overhead           {help_ms - floor_ms:7.1f} ms")


if __name__ == "__main__":
    main()
