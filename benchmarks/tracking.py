"""Keeping the skier through camera pans and occlusions: a stress test made from the piste clip.

No sample clip has a fast pan, so variants are derived from the piste clip at run time (in a
temporary folder): `original`; `pan`, a 1280x720 window sweeping over the 1080p frames with
two whip pans (480 and 560 px in a fifth and a sixth of a second); `occlusion`, a grey block
hiding the skier for 0.8 s while a decoy (the skier's picture in other colours) stands 1.2
box widths beside it. Each runs with the tracking settings of each mode:

- `before`: position and time only, no motion compensation (the settings before appearance);
- `appearance`: clothing colours in the stitching;
- `gmc`: BoT-SORT's sparse optical flow motion compensation on the tracker's 640 px frames;
- `both`: appearance and motion compensation.

Columns: `tracked` (share of frames with a skier box), `on skier` (share of frames whose box
is the skier's, IoU >= 0.5 with the original clip's skier box moved by the pan; occluded
frames count as not on the skier), `wrong` (frames whose box is someone else), `pieces`
(track pieces joined), and `ms/frame` of the detection and tracking stage.

    .venv/bin/python benchmarks/tracking.py [--media ../shared/media] [--modes before,both] [--equipment]

`--equipment` also counts, for both sample clips at the detector sizes 320 and 640, the
detector frames in which skis, a snowboard or a surfboard lie under the skier's feet.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.config import CONFIG_DIR, load_config
from tasks.models import require_model
from tasks.tracking import SkierTrack, box_iou, detect_and_track, select_skier
from tasks.video import probe_video
from tests import clips

OCCLUDED = (60, 80)  # frames of the piste clip hidden behind the block
MODES = {
    "before": (False, "none"),
    "appearance": (True, "none"),
    "gmc": (False, "sparseOptFlow"),
    "both": (True, "sparseOptFlow"),
}


def tracker_file(folder: Path, gmc_method: str) -> Path:
    """The project's BoT-SORT settings with another motion compensation method."""
    settings = yaml.safe_load((CONFIG_DIR / "botsort.yaml").read_text())
    path = folder / f"botsort-{gmc_method}.yaml"
    path.write_text(yaml.safe_dump(settings | {"gmc_method": gmc_method}))
    return path


def run(clip: Path, overrides: dict) -> tuple[SkierTrack, float]:
    """The chosen skier track for `clip` and the detection and tracking stage's ms per frame."""
    config = load_config(overrides={"device": "cpu", "tracking": overrides})
    info = probe_video(clip)
    started = time.perf_counter()
    found = detect_and_track(info, config.tracking, require_model(config.models, "detector"), "cpu")
    elapsed = time.perf_counter() - started
    return select_skier(found, config.tracking), 1000 * elapsed / info.frames_in_trim


def on_skier(boxes: np.ndarray, reference: np.ndarray) -> tuple[int, int]:
    """Frames whose box is the skier's (IoU >= 0.5 with `reference`), and frames whose box is
    someone else's (a box where the reference has none, or IoU < 0.3)."""
    right = wrong = 0
    for box, truth in zip(boxes, reference):
        if np.isnan(box[0]):
            continue
        if np.isnan(truth[0]):
            wrong += 1
            continue
        iou = box_iou(truth, box[None])[0]
        right += iou >= 0.5
        wrong += iou < 0.3
    return right, wrong


def variants(piste: Path, folder: Path, skier: np.ndarray) -> dict[str, tuple[Path, np.ndarray]]:
    """Each variant's clip and where the skier truly is in it (NaN where hidden)."""
    pan, offsets = clips.panned(piste, folder / "pan.mp4")
    shifted: np.ndarray = skier - np.column_stack([offsets, offsets]).astype(np.float64)
    hidden = skier.copy()
    hidden[OCCLUDED[0] : OCCLUDED[1]] = np.nan
    occlusion = clips.occluded(piste, folder / "occlusion.mp4", skier, *OCCLUDED)
    return {"original": (piste, skier), "pan": (pan, shifted), "occlusion": (occlusion, hidden)}


def equipment_table(media: Path) -> None:
    print("\n| clip | imgsz | detector frames with skier | skis | snowboard | surfboard |")
    print("|---|---|---|---|---|---|")
    for name in ("piste_followcam.mp4", "indoor_carpet_front.mp4"):
        for imgsz in (320, 640):
            skier, _ = run(media / name, {"imgsz": imgsz})
            votes = skier.equipment
            print(
                f"| {name} | {imgsz} | {skier.detector_frames} | {votes['skis']} | {votes['snowboard']} "
                f"| {votes['surfboard']} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--equipment", action="store_true")
    args = parser.parse_args()
    piste = args.media / "piste_followcam.mp4"
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        trackers = {method: tracker_file(folder, method) for method in ("none", "sparseOptFlow")}
        reference, _ = run(piste, {})
        print("| variant | mode | frames | tracked | on skier | wrong | pieces | ms/frame |")
        print("|---|---|---|---|---|---|---|---|", flush=True)
        for variant, (clip, truth) in variants(piste, folder, reference.boxes).items():
            for mode in args.modes.split(","):
                appearance_on, gmc = MODES[mode]
                skier, ms = run(clip, {"appearance_stitching": appearance_on, "tracker": str(trackers[gmc])})
                right, wrong = on_skier(skier.boxes, truth)
                frames = len(skier.boxes)
                print(
                    f"| {variant} | {mode} | {frames} | {skier.tracked_fraction:.1%} | {right / frames:.1%} "
                    f"| {wrong} | {len(skier.track_ids)} | {ms:.1f} |",
                    flush=True,
                )
    if args.equipment:
        equipment_table(args.media)


if __name__ == "__main__":
    main()
