"""The template boundary: no byte of data is ever template source, and every value is escaped.

Every value shown in a popup, tooltip, layer control or the legend goes through
:func:`escape_html` and then into the page as a JSON string (``bindPopup("...")``, or
:func:`script_json` for the compact payloads), never through folium's ``Popup``/``Tooltip``
(which insert live HTML into a JavaScript template literal, and need jQuery).

**The template boundary.** folium renders through branca, and branca's
``MacroElement.render`` wraps every macro's *output* in ``Element(output)``, whose
constructor compiles that output as a new Jinja template, which the page render then
evaluates: a second pass in which any ``{{ ... }}`` that a data value put into the first
pass's output runs on the server (an entity named ``{{cycler.__init__.__globals__.os...}}``
ran shell commands). Escaping values cannot close that hole for every value, so the
second pass is removed instead: every element of a map or layer the :mod:`geo_app.maps`
package builds is *sealed* (:func:`seal`), i.e. rendered by :class:`_SealedRender`, which
runs each macro of its constant class template once, with data only as the values of that
single pass, and hands the output on as :class:`_Literal` text, which is never compiled.
Elements folium adds while rendering (``ElementAddToElement``, ``SetIcon``) are sealed by
their parent before they render. streamlit-folium's own path (``_template.module.script``)
is a single pass too. So no byte of data (entity fields, file names, layer and 板块 names,
URL values) is ever template source, whatever it holds; ``tests/test_template_injection.py``
holds a corpus of payloads in every field and map mode.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

from branca.element import Element, Figure, MacroElement
from jinja2 import Template

# ----------------------------------------------------------------------------- escaping

_JS_SAFE = str.maketrans({"$": "&#36;", "`": "&#96;", "\\": "&#92;"})


def escape_html(value: object) -> str:
    """Escape ``value`` for display inside HTML that a map script inserts.

    ``html.escape`` (tags, quotes, ampersands) plus ``$`` → ``&#36;``, backtick →
    ``&#96;`` and backslash → ``&#92;``: Folium-generated scripts put HTML into JavaScript
    template literals, where ``${...}`` runs and a backslash breaks the whole map.
    ``None`` and NaN become ''.

    >>> escape_html('<img src=x onerror=alert(1)>')
    '&lt;img src=x onerror=alert(1)&gt;'
    >>> escape_html('${alert(1)} `x` C:\\\\users\\\\new')
    '&#36;{alert(1)} &#96;x&#96; C:&#92;users&#92;new'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True).translate(_JS_SAFE)


def script_json(value: object) -> str:
    r"""``value`` as compact JSON that is safe inside a ``<script>`` element.

    ``<``, ``>`` and ``&`` become ``\u003c``-style escapes (no ``</script>`` can close the
    element), U+2028/U+2029 are escaped, and so are braces, so that no ``{{...}}`` in the
    data reaches the Jinja-style rewriting streamlit-folium applies to the script. Only
    use it for arrays of numbers and strings (objects' own braces would be escaped too).

    >>> script_json(["</script>{{'x'}}", 1.5])
    '["\\u003c/script\\u003e\\u007b\\u007b\'x\'\\u007d\\u007d",1.5]'
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("{", "\\u007b"),
                       ("}", "\\u007d"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, code)
    return text


# ----------------------------------------------------------------------------- template boundary


class _Literal(Element):
    """Text that goes into the page exactly as it is.

    Its template is a class constant that prints ``this.text`` as a value; the text itself
    is never compiled, unlike ``branca.element.Element(text)``, which compiles its argument.
    """

    _template = Template("{{ this.text }}")

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "Literal"
        self.text = text


class _SealedRender(MacroElement):
    """``MacroElement.render`` without the second template pass (see the module docstring).

    Each macro (``header``, ``html``, ``script``) of the element's constant class template
    runs once; its output joins the figure as :class:`_Literal` text. Children are sealed
    before they render, so elements folium adds during its own ``render`` are sealed too.
    """

    def render(self, **kwargs: Any) -> None:  # type: ignore[override]  # as MacroElement's
        figure = self.get_root()
        if not isinstance(figure, Figure):
            msg = f"{type(self).__name__} can only be rendered inside a Figure"
            raise TypeError(msg)
        macros = self._template.module.__dict__
        for part in ("header", "html", "script"):
            macro = macros.get(part)
            if macro is not None:
                container = getattr(figure, part)
                container.add_child(_Literal(str(macro(self, kwargs))), name=self.get_name())
        for child in self._children.values():
            seal(child)
            child.render(**kwargs)


_SEALED_CLASSES: dict[type, type] = {}


def _sealed_class(cls: type) -> type:
    sealed = _SEALED_CLASSES.get(cls)
    if sealed is None:
        # (cls, _SealedRender): cls's own render (if any) runs first and its
        # super().render() reaches _SealedRender.render before MacroElement's
        sealed = type(f"Sealed{cls.__name__}", (cls, _SealedRender), {"__module__": __name__})
        _SEALED_CLASSES[cls] = sealed
    return sealed


def seal(element: Element) -> Element:
    """Make ``element`` and everything below it render without a second template pass.

    Every ``MacroElement`` in the tree gets a subclass of its own class that also derives
    from :class:`_SealedRender`; other elements are left as they are (their templates
    are class constants). Idempotent; returns ``element``.
    """
    if isinstance(element, MacroElement) and not isinstance(element, _SealedRender):
        element.__class__ = _sealed_class(type(element))
    for child in element._children.values():
        seal(child)
    return element
