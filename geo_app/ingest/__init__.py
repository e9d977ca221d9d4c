"""Read, validate and normalise user files (CSV, Excel .xlsx, GeoJSON) into registry rows.

Everything up to :func:`read_upload` is pure: bytes in, an :class:`ImportReport` out, naming
the row (or feature) and the column of every problem in Chinese and English. Nothing is
guessed: an encoding that does not decode cleanly, a value outside its vocabulary, a
coordinate that is not a finite number in range is an error, and one error rejects the
whole file. Only :func:`import_report` and :func:`remove_batch` write, each as one DuckDB
transaction through :mod:`geo_app.store`, under :func:`geo_app.store.writer_lock`, so that
a rebuild of the shipped data cannot run between reading the store and writing to it; each
takes the acting :class:`~geo_app.auth.Actor` and refuses one who is not an editor. The
per-板块 figures a user brings (:func:`import_user_indicators`) go through the same decoder
and text rule.

Modules, in the order a file passes through them:

- :mod:`~geo_app.ingest.schema`: limits, the registry's columns, aliases, vocabularies, datums;
- :mod:`~geo_app.ingest.text`: the one text rule (:func:`normalise`, :func:`text_problem`);
- :mod:`~geo_app.ingest.report`: :class:`Problem` and :class:`ImportReport`;
- :mod:`~geo_app.ingest.sniff`: the format from the extension and the first bytes;
- :mod:`~geo_app.ingest.decoding`: the one text decoder (:func:`decode_text`);
- :mod:`~geo_app.ingest._readers`: CSV, .xlsx and GeoJSON into a header and text rows;
- :mod:`~geo_app.ingest._checks`: cells, rows, coordinates, ids;
- :mod:`~geo_app.ingest.upload`: :func:`read_upload`, :func:`read_file`, :func:`check_upload`;
- :mod:`~geo_app.ingest.batches`: :func:`import_report`, :func:`remove_batch`, the lists;
- :mod:`~geo_app.ingest.indicators`: the user-indicator CSV (docs/indicators.md).
"""

from __future__ import annotations

from geo_app.ingest._checks import parse_datum
from geo_app.ingest.batches import (
    import_file,
    import_report,
    list_audit,
    list_batches,
    remove_batch,
)
from geo_app.ingest.decoding import decode_text
from geo_app.ingest.indicators import (
    USER_COLUMNS,
    USER_TEMPLATE,
    import_user_indicators,
    parse_user_indicators,
)
from geo_app.ingest.report import BatchNotFoundError, ImportReport, Problem
from geo_app.ingest.schema import (
    BUSY_TIMEOUT_SECONDS,
    COLUMN_ZH,
    CSV_FIELD_LIMIT,
    DERIVED_COLUMNS,
    EXTENSIONS,
    HEADER_ALIASES,
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_HEADER_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_PROBLEMS,
    MAX_ROWS,
    MAX_UNPACKED_BYTES,
    MAX_UPLOAD_BYTES,
    REQUIRED_COLUMNS,
    TEMPLATE_PATH,
    DatumKey,
    template_rows,
)
from geo_app.ingest.sniff import sniff_format
from geo_app.ingest.text import normalise, printable, strip_text, text_problem
from geo_app.ingest.upload import check_upload, read_file, read_upload

__all__ = [
    "MAX_UPLOAD_BYTES", "MAX_ROWS", "REQUIRED_COLUMNS", "TEMPLATE_PATH", "Problem",
    "ImportReport", "BatchNotFoundError", "read_upload", "read_file", "check_upload",
    "import_report", "import_file", "remove_batch", "list_batches", "list_audit", "decode_text",
    "normalise", "text_problem", "printable", "MAX_COLUMNS", "MAX_HEADER_CHARS", "MAX_PROBLEMS",
    "strip_text", "template_rows", "COLUMN_ZH", "MAX_MESSAGE_CHARS", "parse_user_indicators",
    "import_user_indicators", "USER_COLUMNS", "USER_TEMPLATE", "BUSY_TIMEOUT_SECONDS",
    "DERIVED_COLUMNS", "EXTENSIONS", "HEADER_ALIASES", "MAX_CELL_CHARS", "MAX_UNPACKED_BYTES",
    "DatumKey", "parse_datum", "sniff_format", "CSV_FIELD_LIMIT",
]
