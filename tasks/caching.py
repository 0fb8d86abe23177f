"""The cache keys of the pipeline's Prefect tasks.

A step's result is persisted under a key made of what determines it: the step and its source,
the flow run, and the step's inputs that identify the analysis (the clip's sha256 and trim
window, the configuration, the device, the skier hint, where the outputs go). Inputs that
follow from those within one flow run (the skier's track, the pose, the metrics, the results)
are left out, so nothing large is hashed and the key does not depend on how an array is laid
out in memory. The flow run is part of the key: a run retried, or rerun from the Prefect UI,
finds the steps it completed; another run of the same clip computes them again. Keys are paths
in the result storage, one folder per analysis (or flow run), so that a run's results can be
deleted together.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
from collections.abc import Callable
from typing import Any

from prefect.context import TaskRunContext
from prefect.runtime import flow_run

from tasks.config import AnalysisConfig
from tasks.contract import task_results_key_prefix
from tasks.video import VideoInfo

CacheKeyFn = Callable[[TaskRunContext, dict[str, Any]], str]


def step_key(*inputs: str) -> CacheKeyFn:
    """A `cache_key_fn` for a step whose result is determined, within a flow run, by the
    parameters named `inputs`.

    Args:
        inputs: Names of the step's parameters that go into the key.

    Returns:
        A function of the task run's context and parameters, giving the key: the hex sha256
        of those, in the folder of the flow run's results (`results_folder`).
    """

    def key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
        task = context.task
        flow_run_id = str(context.task_run.flow_run_id)
        parts = [task.name, _source_digest(task.fn), flow_run_id]
        parts += [f"{name}={fingerprint(parameters.get(name))}" for name in inputs]
        digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()
        return f"{results_folder(flow_run_id, flow_run.parameters.get('analysis_id'))}/{digest}"

    return key


def results_folder(flow_run_id: str, analysis_id: str | None) -> str:
    """Where a flow run's step results are kept, within the result storage: with the web
    app's analysis (deleting the analysis deletes them), or in a folder of the run's own."""
    return task_results_key_prefix(analysis_id) if analysis_id else f"runs/{flow_run_id}"


def fingerprint(value: Any) -> str:
    """What identifies a step's input in its cache key: a clip by its sha256 and trim window,
    the configuration by the sha256 of its JSON, anything else by its `repr` (small values:
    paths, numbers, the hint, the stills' names)."""
    if isinstance(value, VideoInfo):
        return f"clip {value.sha256} from {value.trim_start_s!r} to {value.trim_end_s!r}"
    if isinstance(value, AnalysisConfig):
        return "config " + hashlib.sha256(value.model_dump_json().encode()).hexdigest()
    if dataclasses.is_dataclass(value) and hasattr(value, "analysis_id"):
        return f"analysis {value.analysis_id}"
    return repr(value)


@functools.cache
def _source_digest(function: Callable[..., Any]) -> str:
    """The sha256 of a step's source: changed code does not reuse an old result."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        source = function.__qualname__
    return hashlib.sha256(source.encode()).hexdigest()
