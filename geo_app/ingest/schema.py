"""What an entity file may hold: size limits, the registry's columns and their aliases,
the vocabularies and datums a cell may name, and where Suzhou is."""

from __future__ import annotations

from typing import Literal

import pandas as pd

from geo_app.settings import PROJECT_ROOT
from geo_app.vocab import BOARDS, KINDS, LEVELS, PRECISIONS, STATUSES, Labels

#: Largest accepted file, the same as ``server.maxUploadSize = 20`` in .streamlit/config.toml.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: Largest accepted number of data rows (or features).
MAX_ROWS = 100_000
#: Largest total unpacked size of an .xlsx (a guard against ZIP bombs).
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
#: At most this many problems are listed; the rest are counted ("and 19,950 more").
MAX_PROBLEMS = 100
#: Most columns a file may have (the registry has 14, an export of this app 20).
MAX_COLUMNS = 200
#: Longest column name, in characters.
MAX_HEADER_CHARS = 100
#: Longest cell of any column, in characters (``notes``; other columns have lower limits).
MAX_CELL_CHARS = 4000
#: The CSV reader's field limit (Python's default). Set on every read: a library may have raised
#: the process-wide limit (``reverse_geocoder`` sets it to ``sys.maxsize`` when imported).
CSV_FIELD_LIMIT = 131_072
#: A problem's English or Chinese text is cut to this many characters.
MAX_MESSAGE_CHARS = 400
#: How long an import keeps retrying while a process outside the app (the DuckDB CLI, say)
#: holds the database open read-write. Other imports and rebuilds are waited for in turn.
BUSY_TIMEOUT_SECONDS = 30.0

REQUIRED_COLUMNS = ("id", "name_zh", "kind", "level", "status", "location_precision", "source")
#: Columns the app derives itself; present in its own exports, recomputed on import.
DERIVED_COLUMNS = ("source_lon", "source_lat", "conversion", "origin", "batch_id", "layers")
TEMPLATE_PATH = PROJECT_ROOT / "data" / "import_template.csv"

#: Extension -> format. ``.txt``/``.tsv`` because Excel saves "Unicode text" as tab-separated .txt.
EXTENSIONS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx",
              ".geojson": "geojson", ".json": "geojson"}

#: Suzhou municipality (box around data/boundaries.geojson, rounded outwards) and its centre.
SUZHOU_BOX = (119.90, 30.74, 121.39, 32.07)
NEAR_SUZHOU_BOX = (118.90, 29.74, 122.39, 33.07)
SUZHOU_CENTRE = (120.585, 31.299)
CHINA_BOX = (73.0, 17.0, 136.0, 54.0)
#: Kinds whose entities may legitimately sit far from Suzhou (abroad or elsewhere in China).
ABROAD_KINDS = frozenset({"offshore_innovation_center", "international_cooperation"})

COLUMN_ZH = {
    "id": "编号", "name_zh": "中文名称", "name_en": "英文名称", "kind": "类型", "level": "级别",
    "status": "状态", "board": "板块", "lon": "经度", "lat": "纬度",
    "location_precision": "定位精度", "location_source": "坐标来源", "source_datum": "坐标系",
    "source": "来源", "notes": "备注",
}
#: Header aliases accepted besides the registry names (after NFKC and case folding).
HEADER_ALIASES = {
    **{zh: col for col, zh in COLUMN_ZH.items()},
    "名称": "name_zh", "longitude": "lon", "lng": "lon", "latitude": "lat",
    "datum": "source_datum", "坐标系统": "source_datum",
}
_MAX_LEN = {"id": 64, "name_zh": 200, "name_en": 300, "location_source": 1000,
            "source": 2000, "notes": 4000}
_VOCABS: dict[str, Labels] = {"kind": KINDS, "level": LEVELS, "status": STATUSES,
                              "board": BOARDS, "location_precision": PRECISIONS}
_VOCAB_ZH = {"kind": "类型", "level": "级别", "status": "状态", "board": "板块",
             "location_precision": "定位精度"}
#: Unambiguous short forms of the 板块 names people write.
_BOARD_SHORT = {"张家港": "张家港市", "常熟": "常熟市", "太仓": "太仓市", "昆山": "昆山市",
                "吴江": "吴江区", "吴中": "吴中区", "相城": "相城区", "姑苏": "姑苏区",
                "sip": "苏州工业园区", "snd": "苏州高新区"}

DatumKey = Literal["WGS84", "GCJ02", "BD09"]
_DATUM_ALIASES: dict[str, DatumKey] = {
    "wgs84": "WGS84", "gps": "WGS84", "epsg4326": "WGS84", "4326": "WGS84", "crs84": "WGS84",
    "gcj02": "GCJ02", "高德": "GCJ02", "amap": "GCJ02", "gaode": "GCJ02", "火星坐标": "GCJ02",
    "腾讯": "GCJ02", "tencent": "GCJ02", "bd09": "BD09", "bd09ll": "BD09", "百度": "BD09",
    "baidu": "BD09",
}
_CONVERSION = {
    "WGS84": "none (WGS-84 source)",
    "GCJ02": "GCJ-02 -> WGS-84 by geo_app.datum.gcj02_to_wgs84 (iterative inverse, < 1 mm)",
    "BD09": "BD-09 -> WGS-84 by geo_app.datum.bd09_to_wgs84 (via GCJ-02)",
}
_NOT_SHIFTED = "none (outside mainland China the {d} provider offset is not applied)"


def template_rows() -> pd.DataFrame:
    """The import template as a table (every cell text)."""
    return pd.read_csv(TEMPLATE_PATH, dtype=str, keep_default_na=False, encoding="utf-8")
