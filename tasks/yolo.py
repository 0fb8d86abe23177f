"""Ultralytics YOLO checkpoints as plain functions from a batch of images to their results."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def quiet_offline_ultralytics() -> None:
    """Set before importing Ultralytics: it otherwise probes the network, may pip-install
    packages, writes settings to the home folder and prints; workers have no internet."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("YOLO_VERBOSE", "False")


_PREDICTORS = {
    "detect": "ultralytics.models.yolo.detect.DetectionPredictor",
    "pose": "ultralytics.models.yolo.pose.PosePredictor",
}


def load_yolo(
    model_path: Path, task: str, device: str, threads: int, **predict_args: Any
) -> Callable[[list[np.ndarray]], list]:
    """Load a checkpoint for `task` (`detect` or `pose`) and return its batch prediction.

    Args:
        model_path: An Ultralytics checkpoint file; never a name to download.
        task: `detect` or `pose`.
        device: `cpu`, `cuda` or `mps`.
        threads: PyTorch threads on the CPU.
        **predict_args: Passed to every prediction (`imgsz`, `conf`, `classes`, ...).

    Returns:
        A function from a list of BGR images (as OpenCV holds them) to Ultralytics `Results`,
        one per image.
    """
    quiet_offline_ultralytics()
    import importlib

    import torch
    from ultralytics import YOLO

    module, _, name = _PREDICTORS[task].rpartition(".")
    base = getattr(importlib.import_module(module), name)

    class Predictor(base):  # type: ignore[valid-type,misc]  # Ultralytics' predictor, chosen by task at run time
        """Sets PyTorch's threads and skips the warm-up.

        Setting up the model would set the threads to Ultralytics' choice (one less than the
        cores, at most 8). The warm-up, on the CPU, only imports torchvision for its NMS,
        which takes 2 s (torch._dynamo comes with it); Ultralytics' own NMS gives the same
        boxes. A GPU warms up on the first batch instead.
        """

        def setup_model(self, model, verbose: bool = True) -> None:
            super().setup_model(model, verbose)
            torch.set_num_threads(threads)
            self.done_warmup = True

    model = YOLO(str(model_path), task=task)

    def predict(images: list[np.ndarray]) -> list:
        return list(model.predict(images, predictor=Predictor, device=device, verbose=False, **predict_args))

    return predict
