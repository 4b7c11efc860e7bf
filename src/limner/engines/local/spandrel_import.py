"""Import spandrel where torchvision is absent.

Why a shim: spandrel (the upscaler loader ComfyUI uses) declares torchvision as a requirement, but the
PyPI torchvision build does not import beside limner's pinned CPU torch, so limner installs spandrel
without it. ``import spandrel`` builds its registry of every architecture, and two of them import
torchvision at module level: LaMa (``rotate``, ``InterpolationMode``, inpainting) and RestoreFormer
(``normalize``, face restoration). Neither is an upscaler and both use those names only inside
``forward``. So, only while spandrel is imported and only when torchvision is missing, a stand-in
``torchvision.transforms.functional`` is put in ``sys.modules``; it is taken out again at once, so no
other library (transformers checks ``find_spec("torchvision")``) ever sees a fake torchvision. The
stand-in functions raise :class:`TorchvisionMissingError` if those two architectures are ever run;
:data:`NEEDS_TORCHVISION` lets the loader refuse them before that, with a clear message.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types
from enum import Enum
from typing import Any, NoReturn

NEEDS_TORCHVISION = frozenset({"LaMa", "RestoreFormer"})
_STAND_IN_MODULES = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")
_IMPORT_LOCK = threading.Lock()


class TorchvisionMissingError(RuntimeError):
    """A spandrel architecture that needs torchvision was run without it."""


class _InterpolationMode(Enum):
    """Names spandrel's LaMa reads at call time; any use ends in :func:`_missing`."""

    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"


def _missing(*_: Any, **__: Any) -> NoReturn:
    raise TorchvisionMissingError(
        "this spandrel architecture (LaMa or RestoreFormer) needs torchvision, which this installation lacks"
    )


def torchvision_available() -> bool:
    return importlib.util.find_spec("torchvision") is not None


def import_spandrel() -> types.ModuleType:
    """``import spandrel``, with torchvision's three names stood in for during the import when it is absent."""
    with _IMPORT_LOCK:
        if "spandrel" in sys.modules or torchvision_available():
            import spandrel

            return spandrel
        functional = types.ModuleType("torchvision.transforms.functional")
        functional.__dict__.update(InterpolationMode=_InterpolationMode, rotate=_missing, normalize=_missing)
        transforms = types.ModuleType("torchvision.transforms")
        transforms.__dict__["functional"] = functional
        package = types.ModuleType("torchvision")
        package.__dict__["transforms"] = transforms
        stand_ins = dict(zip(_STAND_IN_MODULES, (package, transforms, functional), strict=True))
        sys.modules.update(stand_ins)
        try:
            import spandrel
        finally:
            for name, module in stand_ins.items():
                if sys.modules.get(name) is module:
                    del sys.modules[name]
        return spandrel
