-- The owners'-assembly decision rule, in one place (macros used by vote_outcomes.sql and the tests): a
-- function of the matter's item in PRC Civil Code art. 278 (in force 2021-01-01), checked against a quotation
-- of the article (../shared/reference/formats.md §5; the text is cited in docs/domains.md, Governance):
--   下列事项由业主共同决定：(1) 制定和修改业主大会议事规则；(2) 制定和修改管理规约；(3) 选举业主委员会或者更换
--   业主委员会成员；(4) 选聘和解聘物业服务企业或者其他管理人；(5) 使用建筑物及其附属设施的维修资金；(6) 筹集建筑物
--   及其附属设施的维修资金；(7) 改建、重建建筑物及其附属设施；(8) 改变共有部分的用途或者利用共有部分从事经营活动；
--   (9) 有关共有和共同管理权利的其他重大事项。
--   业主共同决定事项，应当由专有部分面积占比三分之二以上的业主且人数占比三分之二以上的业主参与表决。决定前款第六项
--   至第八项规定的事项，应当经参与表决专有部分面积四分之三以上的业主且参与表决人数四分之三以上的业主同意。决定前款
--   其他事项，应当经参与表决专有部分面积过半数的业主且参与表决人数过半数的业主同意。
-- So: every decision needs owners holding >= 2/3 of the exclusive area AND >= 2/3 of the owners to take part;
-- items 6-8 (RAISING the maintenance fund, altering or rebuilding, changing the use of common parts) need
-- >= 3/4 of the participating area AND of the participating owners to agree ('three_quarter'); every other
-- item, (5) USING the maintenance fund included, needs MORE THAN half of both ('ordinary'). (The 2007
-- Property Law art. 76, from memory, put raising and using the fund in one item with a stricter rule; the
-- Civil Code replaced it.)
-- "以上" includes the bound (art. 1259), "过半数" does not. Owners are counted per unit (专有部分), co-owners as
-- one (Judicial Interpretation on building ownership, art. 9, from memory). Abstentions take part but do not
-- agree. Areas are compared exactly in 0.01 m² units.
-- item: art. 278 item 1-9 (from the platform's matter category, vocabulary.sql; anything else gives NULL);
-- eo/po/ao: eligible, participating, agreeing owners; ec/pc/ac: the same areas in 0.01 m² (BIGINT).
CREATE OR REPLACE TEMP MACRO gov_matter_class(item) AS
    CASE WHEN item IN (6, 7, 8) THEN 'three_quarter' WHEN item BETWEEN 1 AND 9 THEN 'ordinary' END;
CREATE OR REPLACE TEMP MACRO gov_quorum_met(eo, ec, po, pc) AS
    po > 0 AND 3 * pc >= 2 * ec AND 3 * po >= 2 * eo;
CREATE OR REPLACE TEMP MACRO gov_passed(item, eo, ec, po, pc, ao, ac) AS
    gov_quorum_met(eo, ec, po, pc) AND CASE gov_matter_class(item)
        WHEN 'three_quarter' THEN 4 * ac >= 3 * pc AND 4 * ao >= 3 * po
        WHEN 'ordinary' THEN 2 * ac > pc AND 2 * ao > po
    END;
