"""The HTML pages of the API (``f=html``): every value escaped, no script, a strict CSP."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from geo_app.api.core import OPENAPI, APIRequest, Catalog, CollectionInfo, _self_links
from geo_app.filters import FILTER_KEYS

_STYLE = ("body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:72em;padding:0 1em;"
          "color:#222}table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;"
          "padding:.25em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3}"
          "nav a{margin-right:1em}code{background:#f3f3f3;padding:0 .2em}")


def _e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute (None shows as 'unknown')."""
    return html.escape("未知 / unknown" if value is None else str(value), quote=True)


def _html_doc(base: str, title: str, links: Sequence[Mapping[str, str]], body: str) -> str:
    nav = [f'<a href="{_e(href)}">{_e(text)}</a>' for href, text in (
        (f"{base}/?f=html", "Home"), (f"{base}/collections?f=html", "Collections"),
        (f"{base}/api?f=html", "API"))]
    alt = [f'<a href="{_e(link["href"])}">{_e(link.get("title", link["rel"]))}</a>'
           for link in links if link["rel"] == "alternate"]
    return ("<!doctype html>\n<html lang=\"zh\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)} – 苏州科创地图</title><style>{_STYLE}</style></head><body>"
            f"<nav>{''.join(nav)} {' '.join(alt)}</nav><h1>{_e(title)}</h1>{body}</body></html>\n")


def _link_list(links: Iterable[Mapping[str, str]]) -> str:
    items = "".join(f'<li><a href="{_e(link["href"])}">{_e(link.get("title", link["rel"]))}</a> '
                    f'<small>({_e(link["rel"])}, {_e(link.get("type", ""))})</small></li>'
                    for link in links)
    return f"<ul>{items}</ul>"


def _html_landing(base: str, body: Mapping[str, Any]) -> str:
    return _html_doc(base, body["title"], body["links"],
                 f"<p>{_e(body['description'])}</p>{_link_list(body['links'])}")


def _extent_text(collection: Mapping[str, Any]) -> str:
    bbox = collection.get("extent", {}).get("spatial", {}).get("bbox")
    return ", ".join(f"{v:g}" for v in bbox[0]) if bbox else "—"


def _html_collections(base: str, body: Mapping[str, Any]) -> str:
    rows = []
    for c in body["collections"]:
        items = next(link["href"] for link in c["links"]
                     if link["rel"] == "items" and link["type"] == "text/html")
        page = next(link["href"] for link in c["links"]
                    if link["rel"] in ("self", "alternate") and link["type"] == "text/html")
        rows.append(f'<tr><td><a href="{_e(page)}">'
                    f'{_e(c["id"])}</a></td><td>{_e(c["title"])}</td>'
                    f"<td>{_e(_extent_text(c))}</td>"
                    f'<td><a href="{_e(items)}">items</a></td></tr>')
    table = ("<table><tr><th>id</th><th>title</th><th>bbox (CRS84)</th><th></th></tr>"
             f"{''.join(rows)}</table>")
    return _html_doc(base, "Collections", body["links"], table)


def _html_collection(base: str, body: Mapping[str, Any], info: CollectionInfo,
                     catalog: Catalog) -> str:
    parts = [f"<p><code>{_e(info.id)}</code> – {_e(info.description)}</p>",
             f"<p>Extent (CRS84): {_e(_extent_text(body))}</p>", _link_list(body["links"])]
    if info.filters:
        values = {k: FILTER_KEYS[k].choices(catalog.layer_ids) or ("text (name contains)",)
                  for k in info.filters}
        rows = "".join(f"<tr><td><code>{_e(k)}</code></td><td>{_e(', '.join(values[k]))}</td></tr>"
                       for k in info.filters)
        parts.append(f"<h2>Filters</h2><table>{rows}</table>")
    return _html_doc(base, info.title, body["links"], "".join(parts))


def _html_schema(base: str, schema: Mapping[str, Any], info: CollectionInfo,
                 links: Sequence[Mapping[str, str]]) -> str:
    props = schema["properties"]["properties"]["properties"]
    rows = []
    for name in schema["properties"]["properties"]["required"]:
        if name in props:
            p = props[name]
            values = ", ".join(str(v) for v in p.get("enum", ()) if v is not None)
            cells = (p["type"], "yes" if p["nullable"] else "no", values)
        else:  # the id property, described at the feature level
            cells = ("string", "no", "equal to the feature id")
        rows.append(f"<tr><td><code>{_e(name)}</code></td>"
                    + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    kinds = ", ".join(schema["properties"]["geometry"]["properties"]["type"]["enum"])
    body = (f"<p>{_e(schema['description'])}</p><p>Geometry: {_e(kinds)} (or null)</p>"
            "<table><tr><th>property</th><th>type</th><th>may be null</th><th>values</th></tr>"
            f"{''.join(rows)}</table>{_link_list(links)}")
    return _html_doc(base, f"{info.id}: feature schema", links, body)


def _geometry_text(geometry: Mapping[str, Any] | None) -> str:
    if geometry is None:
        return "null (location unknown)"
    if geometry["type"] == "Point":
        return "Point " + ", ".join(f"{c:g}" for c in geometry["coordinates"])
    return str(geometry["type"])


def _html_items(base: str, body: Mapping[str, Any], info: CollectionInfo, offset: int) -> str:
    features = body["features"]
    columns = list(dict.fromkeys(k for f in features for k in f["properties"]))
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    rows = []
    collection = next(link["href"] for link in body["links"] if link["rel"] == "collection")
    for f in features:
        fid = f.get("id")
        href = f"{collection}/items/{quote(str(fid), safe='')}?f=html"
        cells = "".join(f"<td>{_e(f['properties'].get(c))}</td>" for c in columns)
        rows.append(f'<tr><td><a href="{_e(href)}">{_e(fid)}</a></td>'
                    f"<td>{_e(_geometry_text(f['geometry']))}</td>{cells}</tr>")
    paging = " ".join(f'<a href="{_e(link["href"])}">{_e(link["title"])}</a>'
                      for link in body["links"] if link["rel"] in ("prev", "next"))
    first = offset + 1 if features else 0
    summary = (f"<p>Features {first}–{offset + len(features)} of {body['numberMatched']} "
               f"({_e(body['timeStamp'])}). {paging}</p>")
    table = (f"<table><tr><th>id</th><th>geometry</th>{head}</tr>{''.join(rows)}</table>")
    return _html_doc(base, info.title, body["links"], summary + table)


def _html_item(base: str, feature: Mapping[str, Any], info: CollectionInfo) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>"
                   for k, v in feature["properties"].items())
    body = (f"<p>Collection: {_e(info.title)}</p><table>"
            f"<tr><th>geometry</th><td>{_e(_geometry_text(feature['geometry']))}</td></tr>"
            f"{rows}</table>{_link_list(feature['links'])}")
    return _html_doc(base, str(feature.get("id", "")), feature["links"], body)


def _html_openapi(doc: Mapping[str, Any], req: APIRequest) -> str:
    rows = []
    for path, item in doc["paths"].items():
        op = item["get"]
        names = []
        for p in op["parameters"]:
            name = p.get("name") or p["$ref"].rsplit("/", 1)[-1]
            names.append(name)
        rows.append(f"<tr><td><code>GET {_e(path)}</code></td><td>{_e(op['summary'])}</td>"
                    f"<td>{_e(', '.join(names))}</td></tr>")
    links = _self_links(req, "/api", "html", OPENAPI)
    body = (f"<p>{_e(doc['info']['description'])} The machine-readable definition: "
            f'<a href="{_e(req.url("/api", {"f": "json"}))}">OpenAPI 3.0 JSON</a>.</p>'
            f"<table><tr><th>operation</th><th>summary</th><th>parameters</th></tr>"
            f"{''.join(rows)}</table>")
    return _html_doc(req.base_url, doc["info"]["title"], links, body)
