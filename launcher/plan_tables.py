"""Moved to `launcher.plan.tables`; this name stays for code written against it."""

from launcher.plan.tables import (
    DATASETS,
    GMB_LABELS,
    GPUS,
    MODELS,
    DatasetInfo,
    GpuInfo,
    find_gpu,
    find_model,
)

__all__ = ["DATASETS", "GMB_LABELS", "GPUS", "MODELS", "DatasetInfo", "GpuInfo", "find_gpu", "find_model"]
