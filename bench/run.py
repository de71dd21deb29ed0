"""``make bench``: runs every benchmark and prints Markdown to paste into RESULTS.md,
headed with this machine and the date (the numbers are only comparable within a run).
"""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import classifier, cold_start, resilience, streaming


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    print(f"## Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}\n")
    print("### Cold start: import and init per function\n")
    print(cold_start.render(cold_start.run()))
    print("\n### Streaming: time to first chunk and total, direct vs through Baton\n")
    print(streaming.render(streaming.run()))
    print("\n### Router: task classification on held-out prompts, and its latency\n")
    print(classifier.render(classifier.run()))
    print("\n### Resilience: success and added latency under faults\n")
    print(resilience.render(resilience.run()))


if __name__ == "__main__":
    main()
