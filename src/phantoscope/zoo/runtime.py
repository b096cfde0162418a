"""ONNX Runtime sessions: one place that picks execution providers and session options."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from phantoscope.config import OperatorSettings


def has_cuda() -> bool:
    """Whether ONNX Runtime can run models on a CUDA GPU here."""
    return "CUDAExecutionProvider" in ort.get_available_providers()


def create_session(model_path: str | Path) -> ort.InferenceSession:
    """Open an ONNX model on the best provider available (CUDA if present, else CPU)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle inference threads sleep instead of spinning: the operator decodes the next
    # requests' images on the same cores while a batch runs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    threads = OperatorSettings().ort_threads
    if threads is not None:
        options.intra_op_num_threads = threads
    providers = ["CPUExecutionProvider"]
    if has_cuda():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(model_path), sess_options=options, providers=providers)
