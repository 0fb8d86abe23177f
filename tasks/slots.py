"""Several analyses per host: how many slots a host has, which cores each gets, and how a run
keeps its threads within its share.

A slot is one Prefect worker process that runs one flow run at a time, pinned to its own
cores (`poser worker` starts them). A flow run's process inherits the pinning; every thread
count in the pipeline (decoding, the detector, the keypoint model, OpenCV) follows the cores
this process may run on, so slots side by side do not fight over cores.
"""

from __future__ import annotations

import logging
import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tasks.config import WorkerConfig

log = logging.getLogger(__name__)

# Thread pools of the numerical libraries, read once when each library loads: a slot's
# processes get them in their environment before anything is imported.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def run_cores() -> int:
    """The cores this process may run on: its CPU affinity where the OS has one (a slot's
    share), else every core."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's model name, as the OS reports it: benchmark figures name it, since kernels
    differ (and round differently) from one CPU to another."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_ids() -> list[int]:
    """The ids of the cores this process may run on, in order."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def bound_threads() -> int:
    """Keep PyTorch's and OpenCV's thread pools within this process's cores, and log how many
    there are; returns them."""
    import cv2
    import torch

    cores = run_cores()
    torch.set_num_threads(cores)
    cv2.setNumThreads(cores)
    log.info("Running on %d cores", cores)
    return cores


@dataclass(frozen=True)
class HostResources:
    """What a host offers its slots.

    Attributes:
        cores: Cores this process may run on.
        memory_mb: Physical memory, MB.
        gpu_memory_mb: Memory of the GPU the slots share, MB; None without a CUDA GPU.
    """

    cores: int
    memory_mb: float
    gpu_memory_mb: float | None

    @classmethod
    def detect(cls) -> HostResources:
        """This host's cores (affinity), physical memory and first CUDA GPU's memory."""
        memory_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
        return cls(run_cores(), memory_mb, _gpu_memory_mb())


def _gpu_memory_mb() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(0).total_memory / 2**20


@dataclass(frozen=True)
class SlotPlan:
    """The slots of a host.

    Attributes:
        slots: Analyses at once.
        cores: Each slot's core ids.
        limited_by: What set the number: `cores`, `memory`, `gpu memory`, `max_slots` or
            `requested`.
    """

    slots: int
    cores: tuple[tuple[int, ...], ...]
    limited_by: str

    @property
    def cores_per_slot(self) -> int:
        return len(self.cores[0])


def slot_count(host: HostResources, config: WorkerConfig) -> tuple[int, str]:
    """The formula: as many slots as the cores, the memory and the GPU memory each allow,
    whichever allows fewest (at least one), capped by `config.max_slots` when set.

    slots = min(cores // cores_per_slot,
                (memory - reserved_memory) // memory_per_slot,
                gpu_memory // gpu_memory_per_slot   (with a GPU))

    Returns:
        The number of slots and what limited it.
    """
    limits = {
        "cores": host.cores // config.cores_per_slot,
        "memory": math.floor((host.memory_mb - config.reserved_memory_mb) / config.memory_per_slot_mb),
    }
    if host.gpu_memory_mb is not None:
        limits["gpu memory"] = math.floor(host.gpu_memory_mb / config.gpu_memory_per_slot_mb)
    if config.max_slots:
        limits["max_slots"] = config.max_slots
    limited_by = min(limits, key=lambda name: limits[name])
    return max(1, limits[limited_by]), limited_by


def plan_slots(
    host: HostResources, config: WorkerConfig, cores: Sequence[int], requested: int | None = None
) -> SlotPlan:
    """The host's slots (the formula's number, or `requested`) and each slot's cores.

    The cores are split evenly in consecutive runs; cores left over go to the first slots.
    More slots than cores share them round-robin.

    Args:
        host: The host's resources.
        config: Each slot's needs.
        cores: The core ids to share out.
        requested: A number of slots that wins over the formula.
    """
    slots, limited_by = (requested, "requested") if requested else slot_count(host, config)
    shares: tuple[tuple[int, ...], ...]
    if slots >= len(cores):
        shares = tuple((cores[k % len(cores)],) for k in range(slots))
    else:
        size, extra = divmod(len(cores), slots)
        starts = [k * size + min(k, extra) for k in range(slots + 1)]
        shares = tuple(tuple(cores[starts[k] : starts[k + 1]]) for k in range(slots))
    return SlotPlan(slots, shares, limited_by)


def slot_environment(share: Sequence[int]) -> dict[str, str]:
    """Environment variables that bound the numerical libraries of a slot with `share` cores."""
    return dict.fromkeys(THREAD_VARIABLES, str(len(share)))
