"""The pipeline's log lines in the Prefect run's logs.

The plain pipeline functions log through standard loggers named after their modules
(`tasks.tracking`, ...). Prefect sends only its own loggers' lines to the API, and those of
`PREFECT_LOGGING_EXTRA_LOGGERS`, read when Prefect is imported; its root level (WARNING) would
drop their INFO lines anyway. `send_to_run_logs` attaches Prefect's API log handler to the
pipeline's loggers and lets their INFO lines through, so the Prefect UI shows them in the logs
of the flow or task run that wrote them.
"""

from __future__ import annotations

import logging

from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler

# The pipeline's loggers: the steps' modules, and the flows'.
PIPELINE_LOGGERS = ("tasks", "flows")


class RunLogHandler(APILogHandler):
    """Prefect's API log handler, for lines written inside a flow or task run only: outside
    one (a plain function called from a script or a test) a line goes to the other handlers
    alone, instead of a warning that it has no run to go to."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "flow_run_id", None) or FlowRunContext.get() or TaskRunContext.get():
            super().emit(record)


def send_to_run_logs(level: int = logging.INFO) -> None:
    """Send the pipeline's log lines of `level` and above to the logs of the run they are
    written in. Safe to call more than once."""
    for name in PIPELINE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(handler, RunLogHandler) for handler in logger.handlers):
            logger.addHandler(RunLogHandler())
        if logger.level == logging.NOTSET or logger.level > level:
            logger.setLevel(level)
