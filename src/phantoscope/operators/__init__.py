"""The operator SDK: subclass :class:`Encoder` or :class:`Processor`, then serve it."""

from phantoscope.operators.base import Box, Crop, Encoder, Operator, Processor, l2_normalize

__all__ = ["Box", "Crop", "Encoder", "Operator", "Processor", "l2_normalize"]
