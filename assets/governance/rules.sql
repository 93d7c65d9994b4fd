-- The owners'-assembly decision rule, in one place (macros used by vote_outcomes.sql and the tests).
-- Source: PRC Civil Code Art. 278 (2021), stated from memory and NOT verified against the stored sources
-- (formats.md §5, §9): a decision needs owners holding >= 2/3 of the exclusive area AND >= 2/3 of the owners
-- to take part; major matters (Art. 278 items 6-8: raising or using the maintenance fund, rebuilding,
-- changing the use of common parts) need >= 3/4 of the participating area AND participating owners to agree;
-- other matters need MORE THAN half of both. "以上" includes the bound (Art. 1259), "过半数" does not.
-- Owners are counted per unit (专有部分), co-owners as one (Judicial Interpretation on building ownership,
-- Art. 9, from memory). Abstentions take part but do not agree. Areas are compared exactly in 0.01 m² units.
-- eo/po/ao: eligible, participating, agreeing owners; ec/pc/ac: the same areas in 0.01 m² (BIGINT).
CREATE OR REPLACE TEMP MACRO gov_quorum_met(eo, ec, po, pc) AS
    po > 0 AND 3 * pc >= 2 * ec AND 3 * po >= 2 * eo;
CREATE OR REPLACE TEMP MACRO gov_passed(matter_class, eo, ec, po, pc, ao, ac) AS
    gov_quorum_met(eo, ec, po, pc) AND CASE
        WHEN matter_class = 'major' THEN 4 * ac >= 3 * pc AND 4 * ao >= 3 * po
        ELSE 2 * ac > pc AND 2 * ao > po
    END;
