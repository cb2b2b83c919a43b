"""POMAGAN Post: Nuke start-up (all modes: GUI, ``nuke -t``, farm renders). No GUI work here.

The folder holding this file is on NUKE_PATH, so Nuke has already put it on ``sys.path`` and
``pomagan_nuke`` imports. ``pomagan_post`` (and torch) must import too: install the package into
a Python matching Nuke's, and point ``POMAGAN_SITE_PACKAGES`` at that environment's
site-packages (os.pathsep-separated list allowed) when it is not Nuke's own.
"""

import os
import site

for _path in filter(None, os.environ.get("POMAGAN_SITE_PACKAGES", "").split(os.pathsep)):
    site.addsitedir(_path)
