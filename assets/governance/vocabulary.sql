-- The e-voting platform's matter categories (its 表决事项类别 field, `matterCategory`) mapped to the item of
-- Civil Code art. 278 they are (matter_categories.csv next to this file). Only the item is mapped here: the
-- decision rule is a function of the item, in rules.sql. Placeholder @dir@: this directory.
CREATE OR REPLACE TEMP TABLE matter_categories AS
SELECT * FROM read_csv('@dir@/matter_categories.csv', header = true,
    columns = {'matter_category': 'VARCHAR', 'art278_item': 'INTEGER', 'form': 'VARCHAR'});
