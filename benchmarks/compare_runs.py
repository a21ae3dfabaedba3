"""The final figures of two runs side by side: python benchmarks/compare_runs.py RUN_A RUN_B [--tolerance 1e-4]

Reads each run folder's metrics.json, prints every val/* and test/* figure of both and their largest absolute
difference (`max_abs_diff`), and exits 1 where it is above the tolerance: `benchmarks/gpu_check.sh` compares a
graphed and an eager run of one seed with it.
"""

import argparse
import json
import sys
from pathlib import Path


def figures(run: Path) -> dict[str, float]:
    path = run / "metrics.json"
    if not path.is_file():
        sys.exit(f"error: {path} does not exist; the run did not finish (see its train.log)")
    return {k: v for k, v in json.loads(path.read_text()).items() if k.startswith(("val/", "test/"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    a, b = figures(args.run_a), figures(args.run_b)
    shared = sorted(set(a) & set(b))
    if not shared:
        sys.exit("error: the two runs share no val/* or test/* figure")
    for key in shared:
        print(f"{key:>28}: {a[key]:.6f} {b[key]:.6f} {abs(a[key] - b[key]):.2e}")
    gap = max(abs(a[k] - b[k]) for k in shared)
    print(f"max_abs_diff: {gap:.6f} over {len(shared)} figures (tolerance {args.tolerance:g})")
    sys.exit(0 if gap <= args.tolerance else 1)


if __name__ == "__main__":
    main()
