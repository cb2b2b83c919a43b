"""ffmpeg integration for POMAGAN Post: ``ffmpeg decode | pomagan-post pipe | ffmpeg encode``.

Presets (:data:`PRESETS`, one table) pick the encoder, pixel format, container and what the pipe
writes; :func:`probe` reads a source with ffprobe; :func:`build_commands` gives the three
command lines; :func:`run` runs them joined by pipes, with audio and timecode carried from the
input. ``pomagan-ffmpeg`` (:mod:`ffmpeg_filters.cli`) is the command-line wrapper. See
``ffmpeg_filters/README.md`` for copy-paste pipelines and matte recipes.
"""

from __future__ import annotations

from .pipeline import RunReport, StageFailedError, build_commands, format_commands, probe, run
from .presets import PRESETS, Preset, preset_names

__all__ = ["PRESETS", "Preset", "RunReport", "StageFailedError", "build_commands", "format_commands",
           "preset_names", "probe", "run"]
