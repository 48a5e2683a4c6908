"""Wait until URL answers (exit 0), the process PID exits, or LIMIT seconds pass (exit 1).

    python benchmarks/_wait_http.py URL LIMIT_S [PID]

Used by benchmarks/gpu.sh to wait for a server it started in the background."""

from __future__ import annotations

import os
import sys
import time
import urllib.request


def main() -> int:
    url, limit = sys.argv[1], float(sys.argv[2])
    pid = int(sys.argv[3]) if len(sys.argv) > 3 else None
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if pid is not None:
            try:
                os.kill(pid, 0)
            except OSError:
                print(f"{url}: the server exited", file=sys.stderr)
                return 1
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                reply.read()
            print(f"{url} answered after {time.monotonic() - start:.0f} s", file=sys.stderr)
            return 0
        except Exception:
            time.sleep(2)
    print(f"{url}: no answer in {limit:.0f} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
