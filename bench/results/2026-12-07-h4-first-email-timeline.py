"""Scratch: the first-email timeline from an NL_TRACE file (ms after bench.t0, first mark of each label per process)."""
import sys


def main(path: str, limit_s: float = 3.0) -> None:
    rows = [line.split(" ", 2) for line in open(path).read().splitlines() if line.strip()]
    marks = [(float(t), int(pid), label) for t, pid, label in rows]
    starts = [i for i, mark in enumerate(marks) if mark[2] == "bench.t0"]
    for k, first in enumerate(starts):
        part = marks[first:starts[k + 1] if k + 1 < len(starts) else len(marks)]
        t0, seen = part[0][0], set()
        print(f"--- run {k + 1}")
        for t, pid, label in part:
            key = label.split(" ")[0] + ("" if label.startswith(("bench", "api")) else str(pid))
            if key in seen or t - t0 > limit_s:
                continue
            seen.add(key)
            print(f"{(t - t0) * 1000:9.1f} ms  pid {pid:6d}  {label}")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 3.0)
