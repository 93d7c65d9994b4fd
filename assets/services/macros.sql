-- Helpers for typing property-system CSV text. Placeholder @tz@ (the exports are in local wall time).
CREATE OR REPLACE TEMP MACRO svc_null(s) AS nullif(trim(s), '');
-- the four date styles the clients print (2026-11-20 08:05:00, 2026/11/20 8:05, 20261120080500,
-- 2026年11月20日 08:05), plus their minute/second siblings; NULL when none fits
CREATE OR REPLACE TEMP MACRO svc_ts(s) AS timezone('@tz@', coalesce(
    try_strptime(svc_null(s), '%Y-%m-%d %H:%M:%S'), try_strptime(svc_null(s), '%Y-%m-%d %H:%M'),
    try_strptime(svc_null(s), '%Y/%m/%d %H:%M'), try_strptime(svc_null(s), '%Y/%m/%d %H:%M:%S'),
    try_strptime(svc_null(s), '%Y%m%d%H%M%S'), try_strptime(svc_null(s), '%Y年%m月%d日 %H:%M'),
    try_strptime(svc_null(s), '%Y年%m月%d日 %H:%M:%S')));
-- yuan text ('128.50', '128.5', '¥128.50', '1,280.50') to integer fen; NULL when not a number
CREATE OR REPLACE TEMP MACRO svc_fen(s) AS TRY_CAST(
    TRY_CAST(regexp_replace(svc_null(s), '[¥￥,，元\s]', '', 'g') AS DECIMAL(18, 2)) * 100 AS BIGINT);
CREATE OR REPLACE TEMP MACRO svc_status(s) AS CASE svc_null(s)
    WHEN '待派单' THEN 'pending' WHEN '已派单' THEN 'dispatched' WHEN '处理中' THEN 'in_progress'
    WHEN '已完成' THEN 'completed' WHEN '已关闭' THEN 'closed' WHEN '已重开' THEN 'reopened'
    WHEN '已合并' THEN 'merged' END;
CREATE OR REPLACE TEMP MACRO svc_community(f) AS regexp_extract(f, '/([0-9]{12})/', 1);
