"""Per-板块 statistics, plan items and comparison tables (pure functions over DataFrames).

Everything here works on a :class:`CompareData` snapshot; only :func:`load_compare_data`
touches the database (through :mod:`geo_app.store`). A value nobody has published is
``NaN`` with a note saying so — never a zero — and every value carries its year and source.

- :mod:`~geo_app.districts.data`: the snapshot, labels, the figure in use, :func:`format_number`;
- :mod:`~geo_app.districts.metrics`: the metrics and :func:`comparison_table`;
- :mod:`~geo_app.districts.tables`: counts by kind or level, zones, figures, the matrix;
- :mod:`~geo_app.districts.plan`: the seed's plan items and 2023 targets;
- :mod:`~geo_app.districts.choropleth`: the 板块 a choropleth may paint, and those it cannot;
- :mod:`~geo_app.districts.writers`: CSV, Excel and terminal text of a table.

The user-indicator import lives in :mod:`geo_app.ingest.indicators` (``geo_app.ingest``).
"""

from __future__ import annotations

from geo_app.districts.choropleth import (
    NO_OWN_POLYGON,
    board_polygons,
    boards_without_polygon,
    choropleth_gdf,
)
from geo_app.districts.data import (
    PLAN_STATUSES,
    CompareData,
    current_figures,
    format_number,
    header,
    indicator_label,
    load_compare_data,
    unit_label,
)
from geo_app.districts.metrics import (
    DEFAULT_METRIC,
    PLATFORM_KINDS,
    REGISTRY_LABEL,
    Metric,
    comparison_table,
    counted_entities,
    default_metric,
    get_metric,
    list_metrics,
    metric_values,
    mixed_years,
    profile_table,
    rank_values,
)
from geo_app.districts.plan import PLAN_ITEMS, PlanItem, plan_items, plan_progress, target_met
from geo_app.districts.tables import counts_by, indicator_matrix, indicator_table, zone_table
from geo_app.districts.writers import neutralise_frame, table_to_csv, table_to_text, table_to_xlsx

__all__ = [
    "PLATFORM_KINDS", "DEFAULT_METRIC", "REGISTRY_LABEL", "PLAN_STATUSES", "header",
    "CompareData", "load_compare_data", "Metric", "indicator_label", "list_metrics",
    "default_metric", "get_metric", "counted_entities", "current_figures", "unit_label",
    "metric_values", "rank_values", "comparison_table", "profile_table", "format_number",
    "counts_by", "zone_table", "indicator_table", "indicator_matrix", "PlanItem", "PLAN_ITEMS",
    "plan_items", "mixed_years", "target_met", "plan_progress", "NO_OWN_POLYGON",
    "board_polygons", "choropleth_gdf", "boards_without_polygon", "neutralise_frame",
    "table_to_csv", "table_to_xlsx", "table_to_text",
]
