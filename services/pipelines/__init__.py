"""The app's view of Tekton: which pipelines build or verify which app and environment (config),
and the runs of those pipelines — listed, started, read, cancelled — through one TektonClient per
configured cluster. Handlers, the monitor job and the `pipeline_succeeded` validator use this; the
raw API stays in services/tekton.
"""

from __future__ import annotations

from services.pipelines.service import LatestRuns, PipelineRuns, RunRef
from services.pipelines.targets import PipelineTarget, PipelineTargets

__all__ = ["LatestRuns", "PipelineRuns", "PipelineTarget", "PipelineTargets", "RunRef"]
