"""Media I/O: frame sources and sinks (image sequences through OpenImageIO, video through PyAV)."""

from .base import ClipInfo, FrameSink, FrameSource

__all__ = ["ClipInfo", "FrameSink", "FrameSource"]
