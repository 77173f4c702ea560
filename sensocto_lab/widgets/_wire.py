"""How widget data reaches the browser, shared by the notebook widgets.

- Arrays travel as raw little-endian ``float32`` bytes in ``traitlets.Bytes`` (ipywidgets
  sends them as binary buffers, not JSON); the JavaScript side views them as
  ``Float32Array`` (``_common.js: f32``).
- Each widget's ESM is ``_common.js`` followed by the widget's own ``.js`` file, read once.
  The same text runs as an anywidget in JupyterLab and as a
  :class:`panel.custom.AnyWidgetComponent` in a Panel page (:func:`panel_twin`).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import traitlets

from sensocto_lab.errors import ValidationError

__all__ = ["as_f32_1d", "esm_source", "f32_bytes", "panel_twin"]

_HERE = Path(__file__).resolve().parent


@functools.cache
def esm_source(name: str) -> str:
    """The ESM text of widget ``name``: ``_common.js`` + ``{name}.js`` from this package."""
    common = (_HERE / "_common.js").read_text(encoding="utf-8")
    own = (_HERE / f"{name}.js").read_text(encoding="utf-8")
    return f"{common}\n{own}"


def f32_bytes(values: npt.ArrayLike) -> bytes:
    """``values`` as contiguous little-endian float32 bytes (4 bytes per element)."""
    return np.ascontiguousarray(values, dtype="<f4").tobytes()


def as_f32_1d(values: npt.ArrayLike, what: str) -> npt.NDArray[np.float32]:
    """``values`` as a finite 1-D float32 array, else :class:`ValidationError` naming ``what``."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} must be numbers: {exc}", reason="invalid_value") from None
    if arr.ndim != 1:
        raise ValidationError(
            f"{what} must be a 1-D array, got shape {arr.shape}", reason="invalid_shape"
        )
    if not np.isfinite(arr).all():
        raise ValidationError(
            f"{what} must be finite numbers (no NaN or infinity)", reason="non_finite_value"
        )
    return arr.astype(np.float32)


_PARAM_OF_TRAIT: dict[type, str] = {
    traitlets.Bytes: "Bytes",
    traitlets.Float: "Number",
    traitlets.Int: "Integer",
    traitlets.Unicode: "String",
    traitlets.List: "List",
    traitlets.Bool: "Boolean",
    traitlets.Dict: "Dict",
}


@functools.cache
def _twin_class(widget_cls: Any, names: tuple[str, ...]) -> type:
    import panel as pn
    import param

    params: dict[str, Any] = {}
    for name in names:
        trait = widget_cls.class_traits()[name]
        kind = next(p for t, p in _PARAM_OF_TRAIT.items() if isinstance(trait, t))
        params[name] = getattr(param, kind)(default=trait.default())
    params["_esm"] = widget_cls._esm
    params["__module__"] = __name__
    return type(f"{widget_cls.__name__}Panel", (pn.custom.AnyWidgetComponent,), params)


def panel_twin(widget: Any, names: Sequence[str], *, width: int, height: int) -> Any:
    """A Panel component running ``widget``'s ESM, kept in step with its traitlets.

    Parameters
    ----------
    widget
        An anywidget whose class has an ``_esm`` string.
    names
        The synced traitlets the ESM reads; each becomes a Panel parameter.
    width, height
        Size of the Panel component in pixels.

    Returns
    -------
    panel.custom.AnyWidgetComponent
        Every later change of those traitlets is copied to the component (Panel sends it
        to the browser on the document's own thread). The link holds the component weakly.
    """
    cls = _twin_class(widget.__class__, tuple(names))
    twin = cls(**{n: getattr(widget, n) for n in names}, width=width, height=height)
    ref = weakref.ref(twin)

    def copy(change: dict[str, Any]) -> None:
        target = ref()
        if target is None:
            widget.unobserve(copy, names=list(names))
            return
        target.param.update({change["name"]: change["new"]})

    widget.observe(copy, names=list(names))
    return twin
