"""POMAGAN Post inside Nuke.

* :mod:`pomagan_nuke.core` - the node's decisions (settings, frame range, cache key, render call),
  plain Python, importable without Nuke;
* :mod:`pomagan_nuke.node` - builds the Group and runs renders (imports ``nuke``);
* :mod:`pomagan_nuke.farm` - ``nuke -t`` entry for farm renders of a node.

Nothing is imported here, so ``import pomagan_nuke.core`` works outside Nuke.
"""

__version__ = "0.1.0"
