"""POMAGAN Post: Nuke GUI start-up. Adds Nodes > POMAGAN > POMAGAN Matte."""

import nuke

nuke.menu("Nodes").addCommand(
    "POMAGAN/POMAGAN Matte",
    "import pomagan_nuke.node\npomagan_nuke.node.create_node()",
)
