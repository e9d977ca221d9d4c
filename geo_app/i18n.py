"""User-interface strings in Chinese (default) and English (pure; no framework imports)."""

from __future__ import annotations

LANGS = ("zh", "en")

STRINGS: dict[str, tuple[str, str]] = {
    "app_title": ("苏州科创地图", "Suzhou Innovation Map"),
    "page_map": ("地图", "Map"),
    "page_compare": ("板块对比", "板块 comparison"),
    "page_export": ("导出", "Export"),
    "page_import": ("导入", "Import"),
    "page_sources": ("数据与来源", "Data & sources"),
    "language": ("语言 / Language", "语言 / Language"),
    "filters": ("筛选", "Filters"),
    "kind": ("类型", "Kind"),
    "level": ("级别", "Level"),
    "status": ("状态", "Status"),
    "board": ("板块", "板块 (district)"),
    "layer": ("战略图层", "Strategy layer"),
    "search": ("名称搜索（中文或英文）", "Name search (Chinese or English)"),
    "shown": ("显示 {n} / {total} 个主体", "Showing {n} of {total} entities"),
    "no_point": ("无坐标的主体（未在地图上显示）", "Entities without a location (not on the map)"),
    "schematic": ("示意范围，按规则生成，非官方边界",
                  "Schematic area built by rule, not an official boundary"),
    "sip_no_polygon": ("苏州工业园区没有官方边界：图上虚线是按规则由区县多边形生成的示意范围，"
                       "非官方边界。",
                       "Suzhou Industrial Park has no official boundary: its dashed outline is a "
                       "schematic area built by rule from the county polygons, not an official "
                       "boundary."),
    "board_schematic": ("板块（示意范围，按规则生成，非官方边界）",
                        "板块 (schematic area built by rule, not an official boundary)"),
    "unknown": ("未知", "Unknown"),
}


def t(key: str, lang: str, **kwargs: object) -> str:
    """Translate ``key`` into ``lang``, formatting ``kwargs``; unknown keys return the key.

    >>> t("shown", "en", n=3, total=5)
    'Showing 3 of 5 entities'
    """
    pair = STRINGS.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "en" else pair[0]
    return text.format(**kwargs) if kwargs else text

# --- map page, legend, popups and the data & sources page -------------------------
STRINGS.update({
    "map_legend": ("图例", "Legend"),
    "map_choose": ("全部（未筛选）", "All (not filtered)"),
    "map_legend_kinds": ("主体类型（颜色+形状）", "Entity kind (colour + shape)"),
    "map_legend_precision": ("位置精度", "Location precision"),
    "map_precision_exact": ("实心：具体地址/园区点位", "Solid: site or campus point"),
    "map_precision_approx": ("空心虚线：近似点位（镇/区县/城市的代表点）",
                             "Hollow, dashed: approximate (a town, district or city point)"),
    "map_legend_layers": ("战略图层（示意）", "Strategy layers (schematic)"),
    "map_schematic_tag": ("示意", "schematic"),
    "map_legend_boundaries": ("区县边界（板块）", "County boundaries (板块)"),
    "map_boundaries_group": ("区县/板块边界", "County / 板块 boundaries"),
    "map_water_group": ("水系（湖泊、吴淞江）", "Water (lakes, Wusong River)"),
    "map_lake": ("湖泊", "Lake"),
    "map_river": ("河流", "River"),
    "map_entities_group": ("科创主体（{n}）", "Entities ({n})"),
    "map_board_of_county": ("对应板块：{boards}", "板块: {boards}"),
    "map_no_board": ("无对应板块", "no 板块"),
    "map_basemap": ("底图", "Basemap"),
    "map_basemap_none": ("无底图（离线）", "None (offline)"),
    "map_basemap_osm": ("OpenStreetMap（需联网）", "OpenStreetMap (needs internet)"),
    "map_basemap_carto": ("CartoDB 浅色（需联网）", "CartoDB light (needs internet)"),
    "map_basemap_amap": ("高德地图（GCJ-02，需联网）", "AMap / 高德 (GCJ-02, needs internet)"),
    "map_gcj_note": ("高德底图使用GCJ-02坐标：图上所有点、线、面已由WGS-84偏移为GCJ-02后绘制；"
                     "导出数据仍为WGS-84。",
                     "AMap tiles use GCJ-02: every point, line and area on this map is shifted "
                     "from WGS-84 to GCJ-02 before drawing; exports stay in WGS-84."),
    "map_no_tiles_note": ("未加载底图瓦片：地图不访问任何外部服务器。可在侧栏选择联网底图。",
                          "No basemap tiles: the map contacts no outside server. A networked "
                          "basemap can be chosen in the sidebar."),
    "map_tiles_note": ("底图瓦片来自外部服务器（{name}），离线时不显示；边界、水系和图层仍会显示。",
                       "Basemap tiles come from an outside server ({name}) and are missing "
                       "offline; boundaries, water and layers still show."),
    "map_counts": ("地图上 {on_map} 个，无坐标 {no_point} 个，共 {n} 个符合筛选（全部 {total} 个）",
                   "{on_map} on the map, {no_point} without a location, {n} match the filters (of "
                   "{total})"),
    "map_none_match": ("没有符合筛选条件的主体。", "No entity matches the filters."),
    "map_no_point_hint": ("这些主体没有可靠来源的坐标，因此不在地图上；它们仍计入统计和导出。",
                          "These entities have no sourced coordinates, so they are not on the map; "
                          "they still count in statistics and exports."),
    "map_invalid_url": ("链接中的以下筛选值无效，已忽略：{values}",
                        "These filter values in the link are not valid and were ignored: {values}"),
    "map_share_hint": ("当前筛选、语言和底图都保存在网址中，复制网址即可分享此视图。",
                       "The filters, language and basemap are kept in the address: copy it to "
                       "share this view."),
    "col_id": ("编号", "ID"),
    "col_name_zh": ("中文名称", "Name (zh)"),
    "col_name_en": ("英文名称", "Name (en)"),
    "col_precision": ("位置精度", "Location precision"),
    "col_location_source": ("位置来源", "Location source"),
    "col_source": ("来源", "Source"),
    "col_notes": ("备注", "Notes"),
    "col_layers": ("战略图层", "Strategy layers"),
    "col_count": ("数量", "Count"),
    "col_origin": ("来源类别", "Origin"),
    "origin_shipped": ("内置数据", "Shipped"),
    "origin_user": ("用户导入", "Imported"),
    "col_licence": ("许可", "Licence"),
    "col_table": ("数据表", "Table"),
    "app_loading": ("苏州科创地图 正在加载……", "Suzhou Innovation Map is loading …"),
    "map_sidebar_loading": ("筛选条件加载中……", "Loading the filters …"),
    "build_title": ("首次启动：正在由 data/ 建立数据库……",
                    "First start: building the database from data/ …"),
    "build_step_registry": ("① 读取主体登记表", "① Reading the registry"),
    "build_step_boundaries": ("② 读取边界、水系与指标",
                              "② Reading boundaries, water and indicators"),
    "build_step_layers": ("③ 按规则生成战略图层", "③ Building the strategy layers"),
    "build_step_database": ("④ 写入数据库（保留用户导入）",
                            "④ Writing the database (user imports kept)"),
    "build_step_memberships": ("⑤ 计算主体所属图层", "⑤ Computing which layers hold each entity"),
    "build_done": ("数据库已建立", "Database built"),
    "popup_point": ("坐标含义", "This point"),
    "popup_stand_in": ("{precision}代表点：{place}", "{precision} point: {place}"),
    "popup_stand_in_unnamed": ("{precision}代表点（非具体地址）",
                               "{precision} point (not the site itself)"),
    "popup_shared": ("{n} 个主体共用此点，点击聚合标记可展开",
                     "{n} entities share this point; click the cluster to fan them out"),
    "popup_own_point": ("具体地址", "the entity's own site"),
    "popup_approx": ("近似", "approximate"),
    "popup_exact": ("精确", "precise"),
    "src_title": ("数据与来源", "Data & sources"),
    "src_intro": ("本页说明数据库中有什么、每项数据来自哪里、使用何种许可，以及已知的缺口。"
                  "库内所有坐标均为WGS-84。",
                  "What the database holds, where every item comes from, under which licence, and "
                  "the known gaps. Every coordinate inside is WGS-84."),
    "src_holdings": ("数据库内容", "What the registry holds"),
    "src_built": ("数据库生成于 {built_at}（数据哈希 {hash}）",
                  "Database built {built_at} (data hash {hash})"),
    "src_by_kind": ("按类型", "By kind"),
    "src_by_board": ("按板块", "By 板块"),
    "src_by_precision": ("按位置精度", "By location precision"),
    "src_by_origin": ("按来源（内置/导入）", "By origin (shipped / imported)"),
    "src_no_board": ("（未指定板块）", "(no 板块)"),
    "src_files": ("来源文件与许可", "Source files and licences"),
    "src_no_sources_md": ("未找到 data/SOURCES.md。", "data/SOURCES.md was not found."),
    "src_tables": ("各数据表的来源字段", "Source columns of the tables"),
    "src_boundaries": ("边界", "Boundaries"),
    "src_water": ("水系", "Water"),
    "src_layers": ("战略图层（均为示意范围）", "Strategy layers (all schematic)"),
    "src_entity_sources": ("全部主体记录及其来源", "Every entity row and its sources"),
    "src_gaps": ("已知缺口", "Known gaps"),
    "src_gap_sip": ("苏州工业园区在高德和天地图的行政区划数据中都不是独立单元，没有官方多边形："
                    "地图按记录在 data/SOURCES.md 的规则由虎丘区、吴中区多边形生成示意范围，"
                    "用它计算的面积统计同为示意。",
                    "Suzhou Industrial Park is not a unit in the AMap or Tianditu boundary data "
                    "and has no official polygon: the map draws a schematic area built from the "
                    "虎丘区 and 吴中区 polygons by the rule in data/SOURCES.md, and area "
                    "statistics that use it are schematic too."),
    "src_gap_offshore": ("26家海外离岸创新中心的名单未公开：登记表只有一条无坐标的汇总记录。",
                         "The list of the 26 overseas offshore innovation centres is not public: "
                         "the registry holds one aggregate row without a location."),
    "src_gap_no_point": ("{n} 个主体没有可靠来源的坐标（见下表），不在地图上显示，"
                         "但计入统计与导出。",
                         "{n} entities have no sourced coordinates (table below): they are not on "
                         "the map but count in statistics and exports."),
    "src_gap_precision": ("有坐标的主体中，{n} 个只有镇/区县级的近似点位（没有具体地址）。",
                          "Of the entities with a point, {n} are placed only at town or district "
                          "precision (no street address)."),
    "src_gap_layers": ("五个战略图层均按规则示意生成，没有官方公布的边界。",
                       "The five strategy layers are schematic, built by rule: no official "
                       "boundary has been published."),
})

# --- 板块 comparison page ------------------------------------------------------------
STRINGS.update({
    "cmp_title": ("板块对比", "板块 comparison"),
    "cmp_intro": ("十个板块并列比较。每个数字都带年份和来源；没有公开数字的地方留空（“无数据”），"
                  "绝不填零。",
                  "The ten 板块 side by side. Every number carries its year and source; where no "
                  "figure is published the cell is a gap (“no data”), never a zero."),
    "cmp_tab_rank": ("排名与地图", "Ranking & map"),
    "cmp_tab_side": ("并列对比", "Side by side"),
    "cmp_tab_plan": ("计划与完成", "Plan vs result"),
    "cmp_tab_figures": ("公开数据与导入", "Public figures & import"),
    "cmp_metric": ("指标", "Metric"),
    "cmp_year": ("年份", "Year"),
    "cmp_latest": ("各板块最新年份", "Latest year per 板块"),
    "cmp_mixed_years": ("各板块数字的年份不同（{years}），比较时请注意。",
                        "The figures come from different years ({years}); compare with care."),
    "cmp_gaps": ("无数据（留空，不是零）：{boards}", "No figure (a gap, not a zero): {boards}"),
    "cmp_registry_note": ("登记表不是全量名录：计数只反映已登记的主体（不含计划项）。",
                          "The registry is not exhaustive: counts cover registered entities only "
                          "(plan items excluded)."),
    "cmp_download_csv": ("下载 CSV", "Download CSV"),
    "cmp_download_xlsx": ("下载 Excel", "Download Excel"),
    "cmp_map_title": ("分级设色图（区县多边形）", "Choropleth (county polygons)"),
    "cmp_map_note": ("苏州工业园区没有官方多边形，图上绘制的是按规则生成的示意范围。"
                     "苏州高新区（虎丘区）和吴中区的多边形不含园区部分，与园区相邻的边界同为示意。"
                     "图中文字为英文（离线环境不带中文字体）。",
                     "Suzhou Industrial Park has no official polygon: it is drawn with a schematic "
                     "area built by rule. Suzhou New District (虎丘区) and 吴中区 are drawn "
                     "without SIP's parts; their edges with SIP are schematic too. Labels in the "
                     "figure are English (no Chinese font offline)."),
    "cmp_boards": ("选择 2–4 个板块", "Choose 2–4 板块"),
    "cmp_pick_two": ("请至少选择两个板块。", "Choose at least two 板块."),
    "cmp_metrics": ("对比指标", "Metrics to compare"),
    "cmp_profile": ("概况表（数值与年份）", "Profile (value and year)"),
    "cmp_long": ("明细（含来源）", "Details (with sources)"),
    "cmp_counts_kind": ("按类型统计的登记主体", "Registry entities by kind"),
    "cmp_counts_level": ("按级别统计的登记主体", "Registry entities by level"),
    "cmp_zones": ("高新区及其状态", "High-tech zones and their status"),
    "cmp_plan_city": ("全市：2022年完成情况与2023年目标",
                      "City: 2022 results against 2023 targets"),
    "cmp_plan_note": ("进度 = 2022年数值 ÷ 2023年目标（位次为目标 ÷ 数值）；两年口径可能不同，"
                      "见说明。没有2022年数字的目标不画进度条。",
                      "Progress = 2022 value ÷ 2023 target (for ranks, target ÷ value); the two "
                      "years may count differently, see the notes. Targets without a 2022 figure "
                      "get no bar."),
    "cmp_progress": ("{indicator}：2022年 {actual} → 2023年目标 {target}",
                     "{indicator}: 2022 {actual} → 2023 target {target}"),
    "cmp_plan_no2022": ("没有2022年数字的2023年目标（{n}项）",
                        "2023 targets without a 2022 figure ({n})"),
    "cmp_col_target": ("2023年目标", "2023 target"),
    "cmp_unit_differs": ("单位不同，不计算进度", "units differ: no progress computed"),
    "cmp_sources": ("来源：2022年 {actual}；目标 {target}",
                    "Sources: 2022 {actual}; target {target}"),
    "cmp_later": ("2023年公开数字：{value}（{source}）", "2023 public figure: {value} ({source})"),
    "cmp_plan_boards": ("板块计划项（种子文件二.5.三、二.5.四）与登记表中的计划项",
                        "板块 plan items (seed 二.5.三, 二.5.四) and plan rows of the registry"),
    "cmp_plan_counts": ("各板块计划项按状态统计", "板块 plan items by status"),
    "cmp_col_item": ("计划项", "Plan item"),
    "cmp_col_section": ("章节", "Section"),
    "cmp_col_evidence": ("依据", "Evidence"),
    "cmp_figures_matrix": ("各板块公开数据（最新年份）", "Public figures per 板块 (latest year)"),
    "cmp_figures_all": ("全部数据行（含来源）", "All figures with their sources"),
    "cmp_import": ("导入自有数据", "Import your own figures"),
    "cmp_import_help": ("格式：CSV，列为 板块,indicator,year,value,unit,source(,notes)（详见 "
                        "docs/indicators.md）。任何一行有误，整份文件都不导入。",
                        "Layout: CSV with columns 板块,indicator,year,value,unit,source(,notes) "
                        "(see docs/indicators.md). If any row is wrong, nothing from the file is "
                        "imported."),
    "cmp_template": ("下载模板", "Download template"),
    "cmp_upload": ("选择 CSV 文件", "Choose a CSV file"),
    "cmp_valid": ("{n} 行通过检查，尚未导入。",
                  "{n} rows passed the checks; nothing imported yet."),
    "cmp_do_import": ("导入 {n} 行", "Import {n} rows"),
    "cmp_imported": ("已导入 {n} 行（批次 {batch}）。", "Imported {n} rows (batch {batch})."),
    "cmp_already": ("该文件已导入（批次 {batch}）。",
                    "This file was already imported (batch {batch})."),
    "cmp_problems": ("问题（行号从表头=第1行算起）",
                     "Problems (row numbers count the header as row 1)"),
})

# --- import page (docs/import.md) ----------------------------------------------------
STRINGS.update({
    "imp_title": ("导入自有主体", "Import your own entities"),
    "imp_intro": ("上传 CSV、Excel（.xlsx）或 GeoJSON 文件，列与登记表相同（可下载模板）。"
                  "文件先经检查；任何一行有错误，整份文件都不导入。导入的数据可按批次删除，"
                  "重建内置数据时保留。",
                  "Upload a CSV, Excel (.xlsx) or GeoJSON file with the registry's columns "
                  "(download the template). The file is checked first; if any row has an error, "
                  "nothing from it is imported. Imports can be removed by batch and survive "
                  "rebuilds of the shipped data."),
    "imp_template": ("下载模板（CSV）", "Download the template (CSV)"),
    "imp_columns": ("列说明", "Columns"),
    "imp_col_header_zh": ("中文列名（亦可用作表头）", "Chinese header (accepted too)"),
    "imp_col_required": ("必填", "Required"),
    "imp_yes": ("是", "yes"),
    "imp_no": ("否", "no"),
    "imp_upload": ("选择文件", "Choose a file"),
    "imp_upload_help": ("CSV（UTF-8、GBK 或 UTF-16）、.xlsx 或 GeoJSON，最大 20 MB",
                        "CSV (UTF-8, GBK or UTF-16), .xlsx or GeoJSON, at most 20 MB"),
    "imp_datum": ("坐标系", "Coordinate system (datum)"),
    "imp_datum_from_file": ("按文件中的 source_datum 列（GeoJSON 默认 WGS-84）",
                            "From the file's source_datum column (GeoJSON: WGS-84)"),
    "imp_report": ("检查结果", "Check report"),
    "imp_rows": ("有效行", "Valid rows"),
    "imp_errors": ("错误", "Errors"),
    "imp_warnings": ("警告", "Warnings"),
    "imp_encoding": ("编码", "Encoding"),
    "imp_preview": ("将导入的行（坐标已转换为 WGS-84；原始坐标保存在 source_lon/source_lat）",
                    "Rows to import (coordinates converted to WGS-84; the originals kept in "
                    "source_lon/source_lat)"),
    "imp_do": ("导入 {n} 行", "Import {n} rows"),
    "imp_done": ("已导入 {n} 行（批次 {batch}）。", "Imported {n} rows (batch {batch})."),
    "imp_batches": ("导入批次", "Import batches"),
    "imp_no_batches": ("尚无导入批次。", "No import batches yet."),
    "imp_remove_choose": ("选择要删除的批次", "Batch to remove"),
    "imp_remove_confirm": ("确认删除该批次的全部数据", "Yes, remove every row of this batch"),
    "imp_remove": ("删除批次", "Remove batch"),
    "imp_removed": ("已删除批次 {batch}（{n} 行）。", "Removed batch {batch} ({n} rows)."),
})

# --- editors and viewers (docs/deploy.md) --------------------------------------------
STRINGS.update({
    "auth_off": ("只读：未配置登录。要启用编辑，请在 .streamlit/secrets.toml 中设置 [auth] 与 "
                 "[editors]（见 docs/deploy.md），或在服务器上使用 geo-app import。",
                 "Read-only: sign-in is not configured. To enable editing, set [auth] and "
                 "[editors] in .streamlit/secrets.toml (see docs/deploy.md), or use geo-app import "
                 "on the server."),
    "auth_sign_in": ("登录（编辑者）", "Sign in (editors)"),
    "auth_sign_out": ("退出登录", "Sign out"),
    "auth_anonymous": ("只读：仅登录的编辑者可以导入或删除数据。",
                       "Read-only: only signed-in editors can import or remove data."),
    "auth_editor": ("已登录：{who}（编辑者）", "Signed in as {who} (editor)"),
    "auth_viewer": ("已登录：{who}（只读：不在编辑者名单中，请联系管理员）",
                    "Signed in as {who} (read-only: not on the editors list; ask an "
                    "administrator)"),
    "auth_sign_in_failed": ("无法登录：{error}", "Cannot sign in: {error}"),
    "imp_col_made_by": ("操作者", "Made by"),
    "imp_audit": ("变更记录（导入与删除，只增不改）",
                  "Change log (imports and removals, append-only)"),
    "imp_no_audit": ("尚无变更记录。", "No changes recorded yet."),
    "cmp_import_editors": ("只有登录的编辑者可以导入数据（在“导入”页登录）。",
                           "Only signed-in editors can import figures (sign in on the Import "
                           "page)."),
})

# --- export page (docs/export.md) --------------------------------------------------
STRINGS.update({
    "exp_title": ("导出数据", "Export data"),
    "exp_intro": ("下载当前筛选结果（与地图相同的筛选条件）。GeoJSON 符合 RFC 7946（WGS-84 经纬度）"
                  "；CSV（UTF-8 带 BOM，Excel 可直接打开）与 Excel 中以 = + - @ 开头的文本已加 ' "
                  "前缀以防公式执行。",
                  "Download the current filtered view (the same filters as the map). GeoJSON "
                  "follows RFC 7946 (WGS-84 lon/lat); in CSV (UTF-8 with BOM, opens in Excel) and "
                  "Excel, text starting with = + - @ gets a leading ' so no formula runs."),
    "exp_collection": ("导出内容", "What to export"),
    "exp_coll_entities": ("科创主体", "Innovation entities"),
    "exp_coll_layers": ("战略图层（示意范围）", "Strategy layers (schematic)"),
    "exp_coll_boundaries": ("区县边界", "County and city boundaries"),
    "exp_coll_boards": ("十大板块", "The ten 板块"),
    "exp_coll_water": ("水系", "Water"),
    "exp_count": ("将导出 {n} 个要素。", "{n} features will be exported."),
    "exp_no_point": ("其中 {n} 个主体没有来源坐标，导出时几何为空（GeoJSON 中为 \"geometry\": "
                     "null）。",
                     "{n} of them have no sourced coordinates and are exported with a null "
                     "geometry (\"geometry\": null in GeoJSON)."),
    "exp_filter_ignored": ("筛选条件只作用于科创主体；此图层按全部导出。",
                           "The filters apply to entities only; this collection is exported "
                           "whole."),
    "exp_download": ("下载 {fmt}", "Download {fmt}"),
    "exp_prepare": ("准备下载 {fmt}", "Prepare download: {fmt}"),
    "exp_preparing": ("正在生成 {fmt} 文件…", "Writing the {fmt} file…"),
    "exp_link": ("保存 {name}（{mb} MB）", "Save {name} ({mb} MB)"),
    "exp_link_note": ("链接在 {minutes} 分钟内有效；之后请重新准备。",
                      "The link works for {minutes} minutes; prepare the file again after that."),
    "exp_link_expired": ("文件已过期删除，请重新准备下载。",
                         "The prepared file has expired and was removed; prepare it again."),
    "exp_xlsx_too_many": ("超过 Excel 的行数上限（{n} 行），请改用 CSV 或 GeoPackage，"
                          "或缩小筛选范围。",
                          "More rows than an Excel sheet holds ({n}); use CSV or GeoPackage, or "
                          "filter further."),
    "exp_cli": ("命令行得到相同的文件：", "The command line gives the same file:"),
    "exp_schema": ("属性说明见 docs/export.md 与 schemas/entities.schema.json。",
                   "The properties are described in docs/export.md and "
                   "schemas/entities.schema.json."),
})

# --- map at scale (docs/scale.md) ---------------------------------------------------
STRINGS.update({
    "map_kind_other": ("其他", "Other"),
    "map_cell_count": ("{n} 个主体", "{n} entities"),
    "map_cell_hint": ("点击放大查看", "click to zoom in"),
    "map_legend_cells": ("带数字的圆圈：该区域的主体数（点击放大）",
                         "Numbered circle: entities in that area (click to zoom in)"),
    "map_scale_cells": ("有坐标的主体共 {n} 个，超过 {limit} 个，地图按区域汇总为 {cells} "
                        "个圆圈（数字为主体数）。点击圆圈或放大地图，范围内不超过 {limit} "
                        "个主体时逐个显示。",
                        "{n} located entities (more than {limit}): the map groups them by area "
                        "into {cells} numbered circles. Click a circle or zoom in; once the area "
                        "holds {limit} or fewer, each entity is shown with its popup."),
    "map_scale_markers": ("此范围内的 {k} 个主体逐个显示（共 {n} 个有坐标）；"
                          "缩小地图时按区域汇总。",
                          "The {k} entities around this view are shown one by one (of {n} "
                          "located); zooming out groups them by area again."),
    "map_scale_capped": ("此范围内有 {k} 个主体（许多位于同一点），只显示前 {limit} 个；"
                         "请用筛选缩小范围。",
                         "{k} entities lie around this view (many at the same point); only the "
                         "first {limit} are shown. Narrow the filters to see the rest."),
    "map_no_point_more": ("仅列出按编号排序的前 {shown} 个（共 {n} 个）；完整名单可在导出页下载。",
                          "Only the first {shown} by id are listed (of {n}); the export page has "
                          "them all."),
})

STRINGS.update({
    "cmp_met_unknown": ("是否达标无法判断（2022年为约数）",
                        "cannot tell whether met (the 2022 figure is approximate)"),
})

# --- 板块 comparison: interactive choropleth, published default metric
STRINGS.update({
    "chl_group": ("各板块数值", "Values per 板块"),
    "chl_year": ("年份", "Year"),
    "chl_source": ("来源", "Source"),
    "chl_notes": ("说明", "Notes"),
    "chl_no_data": ("无数据（未找到公开数字）", "No data (no public figure found)"),
    "chl_classes": ("分级（按分位数）", "Classes (quantiles)"),
    "chl_lower_better": ("数值越小越靠前，颜色越深", "lower is better: darker"),
    "chl_unpainted": ("未绘制：{boards}（数据中没有其多边形）",
                      "Not drawn: {boards} (no polygon of its own in the data)"),
    "chl_schematic": ("示意多边形（按规则生成，非官方边界）：{boards}",
                      "Schematic polygons (built by rule, not official boundaries): {boards}"),
    "chl_water": ("水体", "Water"),
    "chl_counties": ("区县界", "County boundaries"),
    "cmp_map_note2": ("苏州工业园区没有官方多边形：图上以按规则生成的示意范围着色（见 "
                      "data/SOURCES.md）。苏州高新区（虎丘区多边形）和吴中区绘制时不含园区部分，"
                      "与园区相邻的边界同为示意；每个多边形只显示自己板块的数值。",
                      "Suzhou Industrial Park has no official polygon: it is painted on a "
                      "schematic area built by rule (data/SOURCES.md). SND (the 虎丘区 polygon) "
                      "and 吴中区 are drawn without SIP's parts, and their edges with SIP are "
                      "schematic too; each polygon shows its own 板块's value only."),
    "cmp_unpainted_title": ("未在图上绘制的板块", "板块 not drawn on the map"),
    "cmp_unpainted_note": ("数据中没有其多边形",
                           "no polygon of its own in the data"),
    "cmp_unpainted_shared": ("与其他板块共用区县多边形，不着色",
                             "shares a county polygon with another 板块: not painted"),
    "cmp_counts_kind2": ("按类型统计的本图登记主体数（非官方统计）",
                         "Entities in this map's registry by kind (not an official statistic)"),
    "cmp_counts_level2": ("按级别统计的本图登记主体数（非官方统计）",
                          "Entities in this map's registry by level (not an official statistic)"),
    "cmp_chart_board": ("板块", "板块"),
    "cmp_chart_value": ("数值", "Value"),
})
