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
def _twin_class(
    esm_name: str, traits: tuple[tuple[str, traitlets.TraitType[Any, Any]], ...]
) -> type:
    import panel as pn
    import param

    params: dict[str, Any] = {}
    for name, trait in traits:
        kind = next(p for t, p in _PARAM_OF_TRAIT.items() if isinstance(trait, t))
        params[name] = getattr(param, kind)(default=trait.default())
    params["_esm"] = esm_source(esm_name)
    params["__module__"] = __name__
    title = "".join(part.title() for part in esm_name.split("_"))
    return type(f"{title}Panel", (pn.custom.AnyWidgetComponent,), params)


def panel_twin(widget: Any, esm_name: str, names: Sequence[str], *, width: int, height: int) -> Any:
    """A Panel component running ``widget``'s ESM, kept in step with its traitlets.

    Parameters
    ----------
    widget
        An anywidget built from :func:`esm_source` ``(esm_name)``.
    esm_name
        Which ESM it runs (``"sync_widget"``, ``"strip"``, ``"history"``).
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
    traits = widget.traits()
    cls = _twin_class(esm_name, tuple((n, traits[n]) for n in names))
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
