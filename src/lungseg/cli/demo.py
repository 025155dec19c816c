"""``lungseg demo [OUT_DIR]``: segment the small real chest CT shipped with lungseg."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="segment the small real chest CT shipped with lungseg")
    p.add_argument("out_dir", nargs="?", default="lungseg-demo", type=Path, help="where to write (default ./lungseg-demo)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..api import demo_scan_path, segment
    from .segment import summary, write_outputs

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scan = demo_scan_path()
    res = segment(scan)
    outputs = {"mask": out / "mask.nii.gz", "masked": out / "masked.nii.gz", "qc": out / "qc.png", "report": out / "report.json"}
    opts = argparse.Namespace(margin_mm=10.0, crop=False, crop_margin_mm=10.0, png_values="binary",
                              format="auto", keep_metadata=False)
    written = write_outputs(res, outputs, opts)
    print(f"demo scan: {scan} (COPDGene subject from the Chest Imaging Platform test data; licence: LICENSE-demo.txt beside it)")
    print(summary(res, written))
    print(f"wrote the mask, the masked image, a QC picture and a report into {out.resolve()}")
    return 0
