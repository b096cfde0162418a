"""Phantoscope: self-hosted search by image."""

__version__ = "0.3.0.dev0"
