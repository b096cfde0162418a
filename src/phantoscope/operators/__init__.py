"""The operator SDK: subclass :class:`Encoder`, :class:`Processor` or :class:`TextEncoder`,
then serve it."""

from phantoscope.operators.base import (
    Box,
    Crop,
    Encoder,
    Encoding,
    Operator,
    Processor,
    TextEncoder,
    l2_normalize,
)

__all__ = ["Box", "Crop", "Encoder", "Encoding", "Operator", "Processor", "TextEncoder",
           "l2_normalize"]
