"""``lungseg segment INPUT OUTPUT [options]``: segment one scan or slice and write the mask and extras."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from ..errors import OutputError, SettingsError
from ._common import add_read_options, positive_mm, read_options

log = logging.getLogger(__name__)


def setting_type(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"settings are given as NAME=VALUE, got {text!r}")
    try:
        return key.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"setting {key!r} needs a number, got {value!r}") from None


def add_segment_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``segment`` and ``batch``."""
    add_read_options(p)
    o = p.add_argument_group("segmentation")
    o.add_argument("--set", type=setting_type, action="append", default=[], metavar="NAME=VALUE",
                   dest="settings", help="change one setting (see lungseg.Settings), e.g. --set closing_radius_mm=8")
    o.add_argument("--settings-file", type=Path, metavar="JSON", help="settings from a JSON object {name: value}")


def build_settings(args: argparse.Namespace):
    from ..settings import Settings

    values: dict = {}
    if getattr(args, "settings_file", None):
        try:
            values.update(json.loads(Path(args.settings_file).read_text()))
        except (OSError, ValueError) as err:
            raise SettingsError(f"cannot read settings from {args.settings_file}: {err}") from None
        if not isinstance(values, dict):
            raise SettingsError(f"{args.settings_file} must hold a JSON object of name: value")
    values.update(dict(args.settings))
    return Settings.from_dict(values)


def add_parser(sub) -> None:
    p = sub.add_parser("segment", help="segment the lungs of one scan or slice")
    p.add_argument("input", help="DICOM folder or file, NIfTI, NRRD, MetaImage, NumPy, PNG/JPEG/TIFF/BMP")
    p.add_argument("output", help="the label mask (0 outside, 1 right, 2 left); format from the extension: "
                   ".nii.gz .nii .nrrd .mha .mhd .npy .npz .png .tif .tiff .bmp, .dcm with --format seg")
    add_segment_options(p)
    w = p.add_argument_group("more outputs")
    w.add_argument("--masked", type=Path, metavar="PATH", help="the input with everything but lung set to air (black in any window)")
    w.add_argument("--roi", type=Path, metavar="PATH", help="the lungs grown by --margin-mm, clipped to the body")
    w.add_argument("--margin-mm", type=positive_mm, default=10.0, metavar="MM", help="ROI margin in mm (default 10)")
    w.add_argument("--crop", action="store_true", help="crop every output to the lungs' bounding box plus --crop-margin-mm")
    w.add_argument("--crop-margin-mm", type=positive_mm, default=10.0, metavar="MM", help="margin around the lungs when cropping (default 10)")
    w.add_argument("--png-values", choices=("binary", "labels"), default="binary",
                   help="2D image masks (.png .tif .bmp): 'binary' = 0/255 whole lung (default), 'labels' = 0/1/2")
    w.add_argument("--format", choices=("auto", "seg"), default="auto", help="'seg' writes a DICOM Segmentation object (needs lungseg[seg])")
    w.add_argument("--keep-metadata", action="store_true", help="DICOM SEG: copy more of the source header than patient/study identity")
    w.add_argument("--report", type=Path, metavar="JSON", help="measurements and run facts as JSON")
    w.add_argument("--qc", type=Path, metavar="PNG", help="a QC picture of the result")
    p.set_defaults(run=run)


def output_paths(args: argparse.Namespace) -> dict[str, Path]:
    named = {"mask": args.output, "masked": args.masked, "roi": args.roi,
             "report": getattr(args, "report", None), "qc": getattr(args, "qc", None)}
    return {k: Path(v) for k, v in named.items() if v is not None}


def run(args: argparse.Namespace) -> int:
    from ..api import read, segment
    from ..io import check_output_path

    settings = build_settings(args)
    outputs = output_paths(args)
    if args.format == "seg" and args.crop:
        raise OutputError("--crop cannot be used with --format seg: a DICOM SEG lies on the source frames",
                          hint="drop --crop, or write the mask as .nii.gz/.nrrd")
    for kind, path in outputs.items():
        check_output_path(path, inputs=[args.input], kind=kind, seg=(kind == "mask" and args.format == "seg"))
    resolved = [p.resolve() for p in outputs.values()]
    if len(set(resolved)) < len(resolved):
        raise OutputError("two outputs are the same file: " + ", ".join(f"{k}={p}" for k, p in outputs.items()),
                          hint="give each output its own file name")

    started = time.perf_counter()
    volume = read(args.input, **read_options(args))
    read_s = time.perf_counter() - started
    check_image_outputs(dict.fromkeys(outputs, volume), outputs, args)
    if args.format == "seg" and "dicom" not in volume.metadata:
        raise OutputError(f"DICOM SEG output needs a DICOM input; {args.input} is {volume.metadata.get('format', 'not DICOM')}",
                          hint="write the mask as .nii.gz or .nrrd instead")
    res = segment(volume, settings=settings, window=args.window, hu=args.hu)
    res.timings_s["read_s"] = read_s  # segment() was handed the volume: the read is timed here
    res.timings_s["total_s"] = res.timings_s.get("total_s", 0.0) + read_s
    written = write_outputs(res, outputs, args)
    print(summary(res, written))
    return 0


def check_image_outputs(volumes: dict, outputs: dict[str, Path], args: argparse.Namespace) -> None:
    """Refuse, before anything is written, image outputs that cannot hold their volume (a volume as PNG,
    int16 HU as PNG, ...). ``volumes`` maps "mask"/"masked"/"roi" to the Volume written there (the input
    itself will do before segmenting: the outputs share its grid and the masked image its dtype)."""
    from ..io import check_writable

    for kind in ("mask", "masked", "roi"):
        if kind in outputs and volumes.get(kind) is not None and not (kind == "mask" and args.format == "seg"):
            check_writable(volumes[kind], outputs[kind], kind=kind)


def write_outputs(res, outputs: dict[str, Path], args: argparse.Namespace) -> dict[str, Path]:
    """Write every requested output of one result; returns kind -> path."""
    from ..io import write_image, write_labels

    labels_vol = res.label_volume()
    masked_vol = res.masked() if "masked" in outputs else None
    roi_vol = res.roi(args.margin_mm) if "roi" in outputs else None
    if args.crop:
        from ..volume import crop_box

        box = crop_box(res.labels, res.volume.spacing, args.crop_margin_mm)
        labels_vol = labels_vol.crop(box)
        masked_vol = masked_vol.crop(box) if masked_vol is not None else None
        roi_vol = roi_vol.crop(box) if roi_vol is not None else None
    check_image_outputs({"mask": labels_vol, "masked": masked_vol, "roi": roi_vol}, outputs, args)  # refuse an impossible output (int16 as PNG...) before writing any

    written: dict[str, Path] = {}
    if args.format == "seg":
        from ..io.dicom_seg import write_seg

        written["mask"] = write_seg(res, outputs["mask"], keep_metadata=args.keep_metadata)
    else:
        written["mask"] = write_labels(labels_vol.array, labels_vol, outputs["mask"], png_values=args.png_values)
    if masked_vol is not None:
        written["masked"] = write_image(masked_vol, outputs["masked"])
    if roi_vol is not None:
        written["roi"] = write_labels(roi_vol.array, roi_vol, outputs["roi"], png_values=args.png_values)
    if "qc" in outputs:
        from ..render import write_qc

        written["qc"] = write_qc(res, outputs["qc"])
    if "report" in outputs:
        from ..measure import write_report

        written["report"] = write_report(res, outputs["report"], outputs=written)
    return written


def summary(res, written: dict[str, Path]) -> str:
    """A few lines for the terminal: what was found and where it went."""
    import numpy as np

    from ..measure import result_spacing

    voxel_mm3 = float(np.prod(result_spacing(res)))  # the estimated pixel size when the input had none
    right = int(np.count_nonzero(res.labels == 1))
    left = int(np.count_nonzero(res.labels == 2))
    unit, scale = ("ml", voxel_mm3 / 1000.0) if not res.volume.is_2d else ("cm²", voxel_mm3 / 100.0)
    lines = [
        f"intensity: {res.intensity.path}",
        f"right lung: {right * scale:.1f} {unit}, left lung: {left * scale:.1f} {unit}"
        + ("" if res.volume.metadata.get("spacing_known", True) else " (pixel size estimated)"),
    ]
    if res.flags:
        lines.append("flags: " + ", ".join(res.flags))
    lines += [f"{kind}: {path}" for kind, path in written.items()]
    return "\n".join(lines)
