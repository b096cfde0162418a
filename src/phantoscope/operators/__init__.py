"""The operator SDK: subclass :class:`Encoder` or :class:`Processor`, then serve it."""

from phantoscope.operators.base import (
    Box,
    Crop,
    Encoder,
    Encoding,
    Operator,
    Processor,
    l2_normalize,
)

__all__ = ["Box", "Crop", "Encoder", "Encoding", "Operator", "Processor", "l2_normalize"]
