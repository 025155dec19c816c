"""Speed of lungseg on ../shared/data/popi/series (512x512x141); prints a table of medians.

    python benchmarks/speed.py [DATA_DIR] [RUNS]

Rows: lungseg.segment on a volume in memory (and the process's peak RSS), the CLI end to end
(start, read, segment, write), one 512x512 slice in 2D, and the K-means slice recipe on the same scan.
"""

from __future__ import annotations

import logging
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import lungseg  # noqa: E402
from baselines import kmeans_recipe  # noqa: E402

DATA = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data"
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 5


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    series = DATA / "popi" / "series"
    ct = lungseg.read(series)
    lungseg.segment(ct)  # warm-up (imports, caches)
    t_volume = median_time(lambda: lungseg.segment(ct), RUNS)
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    steps = lungseg.segment(ct).timings_s

    slice_vol = ct.crop((slice(70, 71), slice(None), slice(None)))
    one = lungseg.Volume(slice_vol.array[0], ct.spacing[1:], slice_vol.origin, slice_vol.direction, dict(ct.metadata))
    lungseg.segment(one)
    t_slice = median_time(lambda: lungseg.segment(one), max(RUNS, 10))

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.nii.gz"
        exe = shutil.which("lungseg") or str(Path(sys.executable).parent / "lungseg")
        cmd = [exe, "segment", str(series), str(out)]

        def cli():
            out.unlink(missing_ok=True)
            subprocess.run(cmd, check=True, capture_output=True)

        t_cli = median_time(cli, max(3, RUNS // 2))

    hu = lungseg.segment(ct).hu
    t_kmeans = median_time(lambda: kmeans_recipe(hu), 1)

    print(f"\n## Speed on popi/series {ct.shape}, median of {RUNS} runs\n")
    print("| what | median (s) | target |")
    print("|---|---|---|")
    print(f"| lungseg.segment, volume in memory | {t_volume:.3f} | <= 1.5 |")
    print(f"| peak RSS of this process (GB) | {rss_gb:.2f} | <= 1.5 |")
    print(f"| `lungseg segment popi/series out.nii.gz` end to end | {t_cli:.3f} | <= 3 |")
    print(f"| one 512x512 slice, 2D | {t_slice:.4f} | <= 0.05 |")
    print(f"| K-means slice recipe, same scan (1 run) | {t_kmeans:.3f} | - |")
    print(f"| ratio K-means / lungseg | {t_kmeans / t_volume:.1f}x | - |")
    print("\nlungseg steps (s): " + ", ".join(f"{k}={v:.3f}" for k, v in steps.items()))


if __name__ == "__main__":
    main()
