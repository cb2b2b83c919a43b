"""Farm renders of a POMAGAN node, one chunk per call.

    nuke -t /path/to/nuke_plugin/pomagan_nuke/farm.py SCRIPT.nk NODE --frames=FIRST-LAST

opens the script, renders frames FIRST..LAST of the POMAGAN node NODE into its cache (frames
already there are kept, so chunks, retries and the artist's own Render share the work), and
exits 0 only when every frame of the chunk was written. The artist's next Render (or opening
the node's panel) picks the finished cache up without rendering again.

Without Nuke, :func:`pomagan_nuke.core.render_matte` does the same from a node's settings.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a script by `nuke -t`: make pomagan_nuke importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

USAGE = "usage: nuke -t farm.py SCRIPT.nk NODE --frames=FIRST-LAST"


def _arguments(argv: list[str], raw: list[str] | None) -> tuple[str, str, str] | None:
    """(script, node, frames) from the script's arguments, else None. Nuke takes a number or a
    range that ends a ``nuke -t script.py ...`` command line as the frames to render and leaves
    it out of ``sys.argv`` (Foundry's "Using Command-line Arguments"), so the range is given as
    ``--frames=FIRST-LAST``; a bare range is still taken, from ``argv`` (a direct call) or from
    the end of Nuke's own ``nuke.rawArgs`` where Nuke took it out."""
    frames = [a.split("=", 1)[1] for a in argv if a.startswith("--frames=")]
    rest = [a for a in argv if not a.startswith("--frames=")]
    if not frames and len(rest) == 3:
        frames = [rest.pop()]
    if not frames and len(rest) == 2 and raw and raw[-1] not in rest:
        frames = [raw[-1]]
    if len(frames) != 1 or len(rest) != 2:
        return None
    return rest[0], rest[1], frames[0]


def render_chunk(node_name: str, first: int, last: int) -> int:
    """Render one chunk of an open script's POMAGAN node; returns the exit code."""
    import nuke

    from pomagan_nuke import core, node

    group = nuke.toNode(node_name)
    if group is None or group.knob(node.TAG_KNOB) is None:
        print(f"pomagan farm: error: no POMAGAN node named {node_name!r}", file=sys.stderr)
        return 2
    try:
        report = node.render(group, frames=(first, last), background=False,
                             log=lambda message: print(message, flush=True))
    except core.PomaganError as exc:
        print(f"pomagan farm: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    if not report.ok:
        print(f"pomagan farm: error: frames not rendered: {sorted(report.failed)}", file=sys.stderr)
        return 3
    print(f"pomagan farm: {node_name} {first}-{last}: {len(report.written)} written, "
          f"{len(report.skipped_existing)} already cached", flush=True)
    return 0


def main(argv: list[str]) -> int:
    import nuke

    from pomagan_nuke import core

    parsed = _arguments(argv, list(getattr(nuke, "rawArgs", None) or []))
    if parsed is None:
        print(USAGE, file=sys.stderr)
        return 2
    script, node_name, frames = parsed
    try:
        first, last = core.parse_frames(frames)
    except core.PomaganError as exc:
        print(f"pomagan farm: error: {exc}", file=sys.stderr)
        return 2
    nuke.scriptOpen(script)
    return render_chunk(node_name, first, last)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
