"""A STAND-IN for Nuke's ``nuke`` module, for tests only. It is not Nuke.

It implements only the calls ``nuke_plugin`` makes, with Nuke's names and argument order, so the
node-building, cache and render-orchestration code runs without Nuke:

* knobs: ``Tab_Knob``, ``File_Knob``, ``Text_Knob``, ``String_Knob``, ``Int_Knob``,
  ``Boolean_Knob``, ``Enumeration_Knob``, ``PyScript_Knob`` (``name``, ``value``, ``setValue``,
  ``setFlag``, ``setEnabled``, ``setTooltip``, ``values``);
* nodes: ``Class``, ``name``, ``setName``, ``fullName``, ``knob``, ``[]``, ``addKnob``,
  ``knobs``, ``setInput``, ``input``, ``dependencies``, ``firstFrame``/``lastFrame`` (Read:
  its ``first``/``last`` knobs; other nodes: their first input's), ``writeKnobs``; an Input
  node inside a Group passes the Group's input of its number through (Input nodes are numbered
  in the order they are made, as Nuke numbers them); Groups are
  context managers; ``nuke.nodes.<Class>(**knobs)``, ``createNode``, ``toNode``, ``root``;
* ``execute(write, first, last)``: *simulated* - copies the frames of the nearest upstream Read
  (which must be EXR) to the Write's file pattern, so a tree input yields real cache plates;
* ``ProgressTask`` (records progress; ``cancel_after`` cancels after N updates),
  ``executeInMainThread`` (runs at once), ``message`` (recorded), ``thisNode``/``thisKnob``
  (set by :func:`fire_knob_changed`, which runs a node's ``knobChanged`` script as Nuke would),
  ``menu``/``addCommand``, ``pluginAddPath``, ``scriptOpen`` (records the path), ``GUI``.

Nothing is rendered by this module except the plate copy above; the plugin's own calls into
``pomagan_post`` are real.
"""

from __future__ import annotations

import shutil
import types
from pathlib import Path
from typing import Any

GUI = False
INVISIBLE = 0x400
WRITE_NON_DEFAULT_ONLY = 0x1
TO_SCRIPT = 0x2

#: Records for tests to inspect.
executed: list[tuple[str, int, int]] = []
messages: list[str] = []
progress_tasks: list["ProgressTask"] = []
menus: dict[str, "Menu"] = {}
plugin_paths: list[str] = []
opened_scripts: list[str] = []


# --- knobs ------------------------------------------------------------------------------------

class Knob:
    default: Any = ""

    def __init__(self, name: str, label: str | None = None, value: Any = None) -> None:
        self._name, self._label = name, label if label is not None else name
        self._value = self.default if value is None else value
        self._flags, self._enabled, self.tooltip = 0, True, ""

    def name(self) -> str:
        return self._name

    def label(self) -> str:
        return self._label

    def value(self) -> Any:
        return self._value

    getValue = value

    def setValue(self, value: Any) -> bool:
        self._value = value
        return True

    def setFlag(self, flag: int) -> None:
        self._flags |= flag

    def getFlag(self, flag: int) -> bool:
        return bool(self._flags & flag)

    def setEnabled(self, enabled: bool) -> None:
        self._enabled = bool(enabled)

    def enabled(self) -> bool:
        return self._enabled

    def setTooltip(self, text: str) -> None:
        self.tooltip = text


class Tab_Knob(Knob):
    pass


class File_Knob(Knob):
    pass


class String_Knob(Knob):
    pass


class Text_Knob(Knob):
    pass


class Int_Knob(Knob):
    default = 0

    def setValue(self, value: Any) -> bool:
        self._value = int(value)
        return True


class Boolean_Knob(Knob):
    default = False

    def setValue(self, value: Any) -> bool:
        self._value = bool(value)
        return True


class Enumeration_Knob(Knob):
    def __init__(self, name: str, label: str, values: list[str]) -> None:
        super().__init__(name, label, values[0] if values else "")
        self._values = list(values)

    def values(self) -> list[str]:
        return list(self._values)

    def setValue(self, value: Any) -> bool:
        if isinstance(value, int):
            value = self._values[value]
        if value not in self._values:
            raise ValueError(f"{value!r} is not one of {self._values}")
        self._value = value
        return True


class PyScript_Knob(Knob):
    def __init__(self, name: str, label: str = "", command: str = "") -> None:
        super().__init__(name, label, command)

    def execute(self) -> None:
        exec(self._value, {})


# --- nodes ------------------------------------------------------------------------------------

_ROOT_CONTEXT: list["Group"] = []


class Node:
    def __init__(self, cls: str, name: str = "", **knobs: Any) -> None:
        self._class = cls
        self._inputs: dict[int, Node | None] = {}
        self._knobs: dict[str, Knob] = {}
        self.parent: Group | None = None
        for knob_name in ("name", "disable", "knobChanged", "file", "first", "last", "origfirst",
                          "origlast", "colorspace", "which"):
            self._knobs[knob_name] = Knob(knob_name)
        self._knobs["disable"] = Boolean_Knob("disable")
        self._knobs["name"].setValue(name or cls + "1")
        for key, value in knobs.items():
            self._knobs.setdefault(key, Knob(key)).setValue(value)

    def Class(self) -> str:
        return self._class

    def name(self) -> str:
        return self._knobs["name"].value()

    def setName(self, name: str) -> None:
        self._knobs["name"].setValue(name)

    def fullName(self) -> str:
        if self.parent is None or self.parent is _root:
            return self.name()
        return f"{self.parent.fullName()}.{self.name()}"

    def knob(self, name: str) -> Knob | None:
        return self._knobs.get(name)

    def __getitem__(self, name: str) -> Knob:
        return self._knobs[name]

    def knobs(self) -> dict[str, Knob]:
        return dict(self._knobs)

    def addKnob(self, knob: Knob) -> None:
        self._knobs[knob.name()] = knob
        self.user_knobs.append(knob.name())

    @property
    def user_knobs(self) -> list[str]:
        if not hasattr(self, "_user_knobs"):
            self._user_knobs: list[str] = []
        return self._user_knobs

    def setInput(self, index: int, node: "Node | None") -> bool:
        self._inputs[index] = node
        return True

    def input(self, index: int) -> "Node | None":
        if self._class == "Input" and self.parent is not None:  # a group's Input: its input,
            inputs = [n for n in self.parent.children if n.Class() == "Input"]  # numbered as made
            return self.parent.input(inputs.index(self))
        return self._inputs.get(index)

    def inputs(self) -> int:
        return max(self._inputs, default=-1) + 1

    def dependencies(self) -> list["Node"]:
        return [n for _, n in sorted(self._inputs.items()) if n is not None]

    def firstFrame(self) -> int:
        if self._class == "Read":
            return int(self["first"].value())
        upstream = self.input(0)
        return upstream.firstFrame() if upstream else int(_root["first_frame"].value())

    def lastFrame(self) -> int:
        if self._class == "Read":
            return int(self["last"].value())
        upstream = self.input(0)
        return upstream.lastFrame() if upstream else int(_root["last_frame"].value())

    def writeKnobs(self, flags: int) -> str:
        return " ".join(f"{k} {v.value()!r}" for k, v in sorted(self._knobs.items()) if v.value() not in ("", None))

    def __repr__(self) -> str:
        return f"<stand-in {self._class} {self.fullName()}>"


class Group(Node):
    def __init__(self, cls: str = "Group", name: str = "", **knobs: Any) -> None:
        super().__init__(cls, name, **knobs)
        self.children: list[Node] = []

    def __enter__(self) -> "Group":
        _ROOT_CONTEXT.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _ROOT_CONTEXT.pop()

    def begin(self) -> "Group":
        return self.__enter__()

    def end(self) -> None:
        self.__exit__()

    def node(self, name: str) -> Node | None:
        return next((n for n in self.children if n.name() == name), None)


def _context() -> Group:
    return _ROOT_CONTEXT[-1] if _ROOT_CONTEXT else _root


def _add(node: Node) -> Node:
    parent = _context()
    base, index = node.name(), 1
    while parent.node(node.name()) is not None:  # unique names, as Nuke makes them
        index += 1
        node.setName(f"{base.rstrip('0123456789')}{index}")
    node.parent = parent
    parent.children.append(node)
    return node


class _Nodes:
    def __getattr__(self, cls: str) -> Any:
        def make(**knobs: Any) -> Node:
            name = knobs.pop("name", "")
            node = Group(cls, name) if cls == "Group" else Node(cls, name)
            for key, value in knobs.items():
                node._knobs.setdefault(key, Knob(key)).setValue(value)
            return _add(node)
        return make


nodes = _Nodes()
_root = Group("Root", "Root")
_root._knobs["name"].setValue("untitled")
_root._knobs["first_frame"] = Int_Knob("first_frame", value=1)
_root._knobs["last_frame"] = Int_Knob("last_frame", value=100)
_this: dict[str, Any] = {"node": None, "knob": None}


def createNode(cls: str, knobs: str = "", inpanel: bool = True) -> Node:
    return getattr(nodes, cls)()


def root() -> Group:
    return _root


def toNode(name: str) -> Node | None:
    group: Group = _context()
    for part in name.split("."):
        found = group.node(part)
        if found is None:
            return None
        group = found  # type: ignore[assignment]
    return group


def allNodes(group: Group | None = None) -> list[Node]:
    return list((group or _context()).children)


def thisNode() -> Node:
    return _this["node"]


def thisKnob() -> Knob:
    return _this["knob"]


def fire_knob_changed(node: Node, knob_name: str) -> None:
    """Run ``node``'s knobChanged script with thisNode/thisKnob set (a knob edit, or the
    pseudo-knobs ``inputChange`` / ``showPanel``)."""
    knob = node.knob(knob_name) or Knob(knob_name)
    _this.update(node=node, knob=knob)
    try:
        exec(node["knobChanged"].value(), {})
    finally:
        _this.update(node=None, knob=None)


def press(node: Node, knob_name: str) -> None:
    """Press a PyScript_Knob with thisNode set, as a click in the panel would."""
    _this.update(node=node, knob=node[knob_name])
    try:
        node[knob_name].execute()
    finally:
        _this.update(node=None, knob=None)


# --- execution --------------------------------------------------------------------------------

def _upstream_read(node: Node) -> Node:
    current: Node | None = node.input(0)
    while current is not None and current.Class() != "Read":
        current = current.input(0)
    if current is None:
        raise RuntimeError("stand-in execute: no Read upstream of the Write")
    return current


def execute(node: Node, first: int, last: int, incr: int = 1) -> None:
    """Simulated Write render: copy each frame of the nearest upstream EXR Read."""
    from pomagan_post.io.sequence import as_pattern

    if node.Class() != "Write" or node["disable"].value():
        raise RuntimeError(f"stand-in execute: {node!r} is not an enabled Write")
    executed.append((node.fullName(), first, last))
    source, target = as_pattern(_upstream_read(node)["file"].value()), as_pattern(node["file"].value())
    for frame in range(first, last + 1, incr):
        Path(target.path(frame)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source.path(frame), target.path(frame))


class ProgressTask:
    cancel_after: int | None = None  # tests: cancel once this many updates were made

    def __init__(self, title: str) -> None:
        self.title, self.progress, self.messages = title, [], []
        progress_tasks.append(self)

    def setProgress(self, value: int) -> None:
        self.progress.append(int(value))

    def setMessage(self, text: str) -> None:
        self.messages.append(text)

    def isCancelled(self) -> bool:
        return self.cancel_after is not None and len(self.progress) >= self.cancel_after


def executeInMainThread(call: Any, args: tuple = (), kwargs: dict | None = None) -> None:
    call(*args, **(kwargs or {}))


def message(text: str) -> None:
    messages.append(text)


class Menu:
    def __init__(self, name: str) -> None:
        self.name, self.commands = name, []

    def addCommand(self, name: str, command: Any = None, *args: Any, **kwargs: Any) -> None:
        self.commands.append((name, command))


def menu(name: str) -> Menu:
    return menus.setdefault(name, Menu(name))


def pluginAddPath(path: str) -> None:
    plugin_paths.append(path)


def filename(node: Node) -> str:
    """Nuke: the file a node reads with its TCL expressions and variables expanded (frame
    patterns kept). Here: ``[getenv NAME]`` expanded, the rest as written."""
    import os
    import re

    return re.sub(r"\[getenv (\w+)\]", lambda m: os.environ.get(m.group(1), ""), str(node["file"].value()))


def scriptOpen(path: str) -> None:
    opened_scripts.append(path)


def fresh_module() -> types.ModuleType:
    """A new, empty stand-in (its own root, records) for one test."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("nuke", __file__)
    module = importlib.util.module_from_spec(spec)
    sys.modules["nuke"] = module  # so `import nuke` inside the module's own helpers resolves
    spec.loader.exec_module(module)
    return module
