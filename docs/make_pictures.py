"""Regenerate the README's QC pictures from the real cases in ../shared/data.

    python docs/make_pictures.py            # outlines from lungseg's own segmentation
    python docs/make_pictures.py --reference  # qc-ct64.png from the CIP reference label map instead

Writes docs/qc-ct64.png (COPDGene subject 10002K from the Chest Imaging Platform test data) and
docs/qc-slice.png (TCGA axial slice from the Kaggle "CT Medical Images" set, CC BY 3.0).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lungseg
from lungseg.measure import to_lungmask
from lungseg.render import qc_image

DOCS = Path(__file__).resolve().parent
DATA = DOCS.parent.parent / "shared" / "data"


def save(rgb, path: Path) -> None:
    from PIL import Image

    Image.fromarray(rgb).save(path, optimize=True)
    print(f"wrote {path} {rgb.shape[1]}x{rgb.shape[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", action="store_true", help="draw the CIP reference mask on ct-64, not lungseg's")
    args = parser.parse_args()

    ct = lungseg.read(DATA / "cip" / "ct-64.nrrd")
    if args.reference:
        labels = to_lungmask(lungseg.read(DATA / "cip" / "lm-64.nrrd").array, "cip")
        hu = ct.array
    else:
        res = lungseg.segment(ct)
        labels, hu = res.labels, res.hu
    save(qc_image(hu, labels, ct.spacing, direction=ct.direction), DOCS / "qc-ct64.png")

    res = lungseg.segment(DATA / "ct-medical-images" / "ID_0000_AGE_0060_CONTRAST_1_CT.dcm")
    save(qc_image(res.hu, res.labels, res.volume.spacing, direction=res.volume.direction), DOCS / "qc-slice.png")


if __name__ == "__main__":
    main()
