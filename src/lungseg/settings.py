"""Every threshold and size lungseg uses, in physical units, in one frozen and validated object.

Names carry their unit: ``_hu`` for Hounsfield units, ``_mm`` for millimetres, ``_ml`` for
millilitres, ``_mm2`` for square millimetres, ``_frac`` for a fraction between 0 and 1.
Nothing here is in voxels, so the same settings serve a 64×64 thumbnail and a 1024×1024 slice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from .errors import SettingsError

__all__ = ["Settings"]


@dataclasses.dataclass(frozen=True)
class Settings:
    """Segmentation parameters with sensible defaults.

    Examples
    --------
    >>> s = Settings()
    >>> s.air_threshold_hu
    -400.0
    >>> Settings.from_dict({"air_threshold_hu": -500}).air_threshold_hu
    -500.0
    >>> Settings.from_dict({"iterations": 10})
    Traceback (most recent call last):
    ...
    lungseg.errors.SettingsError: unknown setting 'iterations' (known settings: ...)
    """

    # Intensity ----------------------------------------------------------------
    air_threshold_hu: float = -400.0
    """Voxels below this (pseudo-)HU are air or aerated lung."""
    body_threshold_hu: float = -500.0
    """Voxels above this belong to the body (soft tissue, bone) or to things outside it (table, clothes)."""
    gas_threshold_hu: float = -950.0
    """Pure gas (bowel gas, trachea, pneumothorax) is below this; aerated lung with its small vessels is mostly above."""
    lung_texture_min_frac: float = 0.75
    """An air region is lung only if at least this fraction of it is above ``gas_threshold_hu``."""
    large_lung_volume_ml: float = 300.0
    """A 3D air region at least this large is lung with only ``emphysema_texture_min_frac`` above ``gas_threshold_hu``."""
    emphysema_texture_min_frac: float = 0.3
    """Texture fraction enough for a large 3D region: emphysematous lung has much of its volume below -950 HU
    (LAA%-950 of 30-60 %), while bowel gas or a pneumothorax that large is nearly all pure gas."""
    gas_pocket_radius_mm: float = 4.0
    """Pure gas wider than twice this (trachea, bowel gas, pneumothorax) is not lung parenchyma (2D)."""
    calibrated_texture_min_frac: float = 0.3
    """``lung_texture_min_frac`` for images calibrated to pseudo-HU (PNG, normalised arrays), where lung and gas overlap."""
    texture_max_pixel_mm: float = 3.0
    """Calibrated (non-HU) planes get the texture test only when their pixels are at most this size (vessels visible; kmader's 5 mm thumbnails do not)."""
    gas_max_spread_hu: float = 70.0
    """In a calibrated (non-HU) plane, an air region whose interior spreads (10th to 90th percentile) over less than this is homogeneous gas, not lung (2D)."""
    ggo_threshold_hu: float = -200.0
    """Lung with ground glass or partial consolidation is below this, fat and soft tissue above: the aerated lung grows into such voxels (HU input only)."""
    ggo_min_aerated_frac: float = 0.2
    """A region below ``ggo_threshold_hu`` not joined to an aerated lung is lung only when at least this fraction of it is below ``air_threshold_hu`` (one plane that holds lung)."""
    smoothing_sigma_mm: float = 1.0
    """Gaussian smoothing (mm) of the working image against noise of sharp kernels and low dose; 0 turns it off."""

    # Sizes ----------------------------------------------------------------------
    working_spacing_mm: float = 2.0
    """In-plane pixel size (mm) of the coarse grid the 3D steps run on (finer inputs are block-averaged)."""
    body_opening_mm: float = 2.0
    """In-plane opening radius that detaches the table and thin straps from the patient."""
    gas_core_depth_mm: float = 3.0
    """The interior of an air region (for ``gas_max_spread_hu``) lies farther than this from its edge, beyond the partial-volume rim."""
    min_lung_volume_ml: float = 30.0
    """An air component inside the body smaller than this (3D) is not a lung."""
    min_lung_area_mm2: float = 400.0
    """An air region smaller than this (2D) is not a lung."""
    min_fragment_volume_ml: float = 0.5
    """Pieces of a lung smaller than this, left after removing the airways, are dropped (3D)."""
    closing_radius_mm: float = 6.0
    """Radius of the closing that puts vessels and juxtapleural nodules at the wall back into the lung."""
    trachea_max_diameter_mm: float = 30.0
    """Tubular air wider than this is not counted as trachea or main bronchus."""
    trachea_min_diameter_mm: float = 8.0
    """Tubular air narrower than this does not start the trachea search."""
    trachea_max_offset_mm: float = 50.0
    """The trachea's centre lies at most this far (left-right) from the body's midline in the top slices."""
    main_bronchus_max_length_mm: float = 50.0
    """How far (along the body axis) below the carina the main bronchi are followed and removed."""
    airway_max_volume_ml: float = 250.0
    """The airway grown from the trachea with a rising threshold stops before it exceeds this volume (a leak into the lung)."""
    airway_threshold_step_hu: float = 25.0
    """Step of the rising threshold the airway is grown with, from ``gas_threshold_hu`` up to ``air_threshold_hu``."""
    airway_search_mm: float = 100.0
    """The airway is grown in a box reaching this far (in-plane) around the trachea found in the top slices."""
    airway_min_length_mm: float = 30.0
    """A trachea grown in 3D that reaches less far than this below its seed was stopped at once (an
    emphysematous lung as dark as its lumen): the airway is then tracked slice by slice instead."""
    bronchus_wall_radius_mm: float = 6.0
    """Below where the airway growth stops, a bronchus lumen narrower than twice this, enclosed by its wall and the hilar vessels, is followed by its contrast."""
    bronchus_contrast_hu: float = 200.0
    """The least contrast (HU) of that lumen against what encloses it (a grey closing with a ball of ``bronchus_wall_radius_mm``)."""
    bronchus_max_volume_ml: float = 20.0
    """The bronchi followed that way hold at most this volume (two tubes 16 mm wide, lumen and wall, ``main_bronchus_max_length_mm`` long); more is a leak and raises the contrast."""
    airway_margin_mm: float = 5.0
    """Air within this distance (in-plane) of the trachea and main bronchi is their partial-volume rim, not lung."""
    split_max_erosion_mm: float = 20.0
    """When the lungs touch, they are eroded up to this depth (mm) to find two separate cores."""
    split_min_part_frac: float = 0.1
    """The smaller lung core must hold at least this fraction of the joined lungs to count as a split."""
    min_gas_pocket_area_mm2: float = 100.0
    """Pure gas inside the body in pockets at least this large counts as bowel gas (2D)."""
    bowel_gas_lung_max_frac: float = 0.25
    """A plane whose lung-like area is below this fraction of its bowel gas area is abdominal (2D)."""
    bowel_gas_distance_mm: float = 15.0
    """In an abdominal plane, lung-like regions closer than this to bowel gas are bowel content (2D)."""
    tube_diameter_margin_mm: float = 5.0
    """Added to ``trachea_max_diameter_mm`` for the partial-volume rim of a tube in a sagittal/coronal plane (2D)."""
    body_cut_min_mm: float = 40.0
    """A picture without geometry whose body the picture's edges cut across at least this long at two opposite ends is a sagittal or coronal plane (2D)."""
    body_cut_min_frac: float = 0.5
    """... and the cuts are at least this fraction of the body's extent across them (the edges of an axial picture may cut the arms, narrower than the trunk is deep)."""
    midline_band_frac: float = 0.15
    """A tube whose centre is within this fraction of the body's width from its middle is the trachea (2D sagittal/coronal)."""
    rib_threshold_hu: float = 150.0
    """Ribs and costal cartilage are above this (HU): seen from a lung, they lie between it and the skin (2D)."""
    ribcage_min_frac: float = 0.03
    """An air region whose outward rays cross rib or cartilage less often than this lies in the chest wall (2D)."""
    ggo_lumen_hu: float = -900.0
    """An air pocket outside the aerated lungs holding a voxel below this is a lumen (airway, bowel), kept out of the ground glass with its rim; a diseased lung's pockets of air are partly filled (HU)."""
    ggo_min_width_mm: float = 6.0
    """Ground glass narrower than this (in-plane) along the aerated lung is its partial-volume rim (pleura, vessels, diaphragm), not added."""
    ggo_search_mm: float = 30.0
    """In a volume, ground glass is looked for within this distance of the aerated lungs' bounding box."""
    ggo_skin_margin_mm: float = 5.0
    """The lungs do not grow into ground glass this close (in-plane) to the body's outline: the partial-volume rim of the skin."""
    ggo_gas_margin_mm: float = 4.0
    """... nor this close (in-plane) to pure gas that is not lung (bowel gas, trachea, oesophagus): its partial-volume rim."""
    subcutaneous_depth_mm: float = 10.0
    """Air regions lying mostly within this depth under the skin are subcutaneous emphysema, not lung."""
    fov_edge_max_frac: float = 0.75
    """Air opening onto the edge of the field of view is a lung cut by it only when at most this fraction of the pixels around it are not the patient (outside air lies along the edge)."""

    # 2D images without spacing ---------------------------------------------------
    assumed_body_width_mm: float = 330.0
    """For 2D images with no pixel size: the body's width used to estimate it."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SettingsError(f"setting {f.name!r} must be a number, got {value!r}")
            object.__setattr__(self, f.name, float(value))
            if f.name.endswith(("_mm", "_ml", "_mm2")) and value < 0:
                raise SettingsError(f"setting {f.name!r} is a size and cannot be negative, got {value}")
            if f.name.endswith("_frac") and not 0 <= value <= 1:
                raise SettingsError(f"setting {f.name!r} is a fraction in [0, 1], got {value}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Settings":
        """Settings from a mapping; unknown names are an error, missing ones take their default."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise SettingsError(f"unknown setting {key!r} (known settings: {', '.join(sorted(known))})")
        return cls(**values)

    def replace(self, **changes: Any) -> "Settings":
        """A copy with some settings changed (validated like ``from_dict``)."""
        return self.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        """A short stable hash of the settings (for resumable batch runs)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
