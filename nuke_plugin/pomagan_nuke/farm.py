"""Farm renders of a POMAGAN node, one chunk per call.

    nuke -t /path/to/nuke_plugin/pomagan_nuke/farm.py SCRIPT.nk NODE FIRST-LAST

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

USAGE = "usage: nuke -t farm.py SCRIPT.nk NODE FIRST-LAST"


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
    if len(argv) != 3:
        print(USAGE, file=sys.stderr)
        return 2
    import nuke

    from pomagan_nuke import core

    script, node_name, frames = argv
    try:
        first, last = core.parse_frames(frames)
    except core.PomaganError as exc:
        print(f"pomagan farm: error: {exc}", file=sys.stderr)
        return 2
    nuke.scriptOpen(script)
    return render_chunk(node_name, first, last)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
