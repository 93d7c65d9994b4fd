"""Identifier patterns, validators and text normalisation for the PII scanner.

Every family is written once here in two flavours: Python ``re`` (exact, on normalised text) and DuckDB RE2
(a looser superset used to prefilter rows in SQL), so the in-database prefilter can never be stricter.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
EMBEDDING_LENGTHS = (128, 256, 512)
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
# Legacy 15-digit IDs have no checksum, so only province prefixes in use by GB/T 2260 are accepted.
ID15_PROVINCES = tuple(
    str(code)
    for code in (*range(11, 16), 21, 22, 23, *range(31, 38), *range(41, 47), *range(50, 55), *range(61, 66))
)
# Separators stripped before comparing canaries; the class is valid in both Python re and RE2.
CANARY_SEPARATOR_CLASS = r"[ \t\r\n\f\v·•・._\-]"

# ---------------------------------------------------------------------------------------------------------
# Shared cores (valid in both Python re and RE2)
_DATE8 = r"(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_DATE6 = r"[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_ID_SEP = "[ .\\-]"
# 6-8-4 (optionally unseparated), 6-4-4-4 and 4-4-4-4-2 groupings; the validator checks date and checksum
# after stripping the separators. Legacy 15-digit IDs: unbroken or 6-6-3.
ID18_CORE = (
    rf"(?:[1-9][0-9]{{5}}{_ID_SEP}?{_DATE8}{_ID_SEP}?[0-9]{{3}}[0-9Xx]"
    rf"|[1-9][0-9]{{5}}{_ID_SEP}(?:19|20)[0-9]{{2}}{_ID_SEP}[0-9]{{4}}{_ID_SEP}[0-9]{{3}}[0-9Xx]"
    rf"|[1-9][0-9]{{3}}{_ID_SEP}[0-9]{{4}}{_ID_SEP}[0-9]{{4}}{_ID_SEP}[0-9]{{4}}{_ID_SEP}[0-9][0-9Xx])"
)
# grouped 6-6-3 only with the same separator twice: a 12-digit community code with a "-007" file suffix
# (310107001001-007) is not an ID
ID15_CORE = (rf"(?:{'|'.join(ID15_PROVINCES)})[0-9]{{4}}"
             rf"(?:{_DATE6}|[ ]{_DATE6}[ ]|-{_DATE6}-|[.]{_DATE6}[.])[0-9]{{3}}")
# Masked phones (138****5678) are deliberately not matched: masking is the approved display form.
_PH_SEP = "[ .\\-]"
# +86 / 0086 / 86, or the same in brackets: "(+86) 138...".
PHONE_PREFIX = r"(?:(?:\+|00)?86[ \-]?|\( ?(?:\+|00)?86 ?\) ?)"
# Chinese numerals for phone digits (一三八〇〇一三八〇〇〇, 幺 for 1, 两 for 2, financial 壹贰叁...), mixed freely
# with digits.
CN_DIGITS = "〇零一二三四五六七八九幺两壹贰叁肆伍陆柒捌玖"
CN_TO_DIGIT = str.maketrans(CN_DIGITS, "0012345678912123456789")
_CN_ONE = "1一幺壹"
_CN_THREE_NINE = "3-9三四五六七八九叁肆伍陆柒捌玖"


def _phone_core(one: str, three_nine: str, digit: str) -> str:
    """11 digits 1[3-9]x xxxx xxxx, unbroken or grouped 3-4-4 / 4-3-4, or (138)0013-8000; after +86 or not."""
    return (
        rf"{PHONE_PREFIX}?(?:{one}{three_nine}{digit}(?:{digit}{{8}}|{_PH_SEP}{digit}{{4}}{_PH_SEP}{digit}{{4}}"
        rf"|{digit}{_PH_SEP}{digit}{{3}}{_PH_SEP}{digit}{{4}})"
        rf"|\({one}{three_nine}{digit}\){_PH_SEP}?{digit}{{4}}{_PH_SEP}?{digit}{{4}})"
    )


PHONE_CORE = _phone_core("1", "[3-9]", "[0-9]")
CN_PHONE_CORE = _phone_core(f"[{_CN_ONE}]", f"[{_CN_THREE_NINE}]", f"[0-9{CN_DIGITS}]")
_PLATE_SEP = "[ .·•・\\-]"
_PLATE_SUFFIX = "(?:[警学挂港澳领试]|应急)"
_NUM = r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
NUMBER_LIST = rf"\[\s*{_NUM}(?:\s*,\s*{_NUM})*\s*\]"
JPEG_B64 = r"/9j/[A-Za-z0-9+/]{100,}"
PNG_B64 = r"iVBORw0KGgo[A-Za-z0-9+/]{20,}"
DATA_URI = r"(?i:data:image/[a-z0-9.+\-]+;base64,)"
_URL_CHAR = "[^\\s\"'<>\\\\]"
# After the image type a URL ends at CJK text or a comma (a CSV field, a sentence), so redaction stops there.
_URL_TAIL = "[^\\s\"'<>\\\\,\u3000-\u9fff\uff00-\uffef]"
# Raster image types (photos); vector icons (.svg, .ico) are not pictures of people.
IMAGE_EXTENSIONS = (
    "jpe?g", "jpe", "jfif", "png", "apng", "bmp", "webp", "gif", "tiff?", "heic", "heif", "avif", "jxl", "jp2",
)  # fmt: skip
_URL_SCHEME = "(?:https?|ftps?)"
_IMAGE_HINT = rf"(?:\.(?:{'|'.join(IMAGE_EXTENSIONS)})|[/?&=](?:pics?|faces?|pictures?))"

# Names after a label (报修人张三, 联系人：李 四, 业主欧阳娜娜): the label, then a common surname and one or two
# given-name characters. A surname first and a stop list keep ordinary words after the same labels (业主大会,
# 住户周知, 联系方式, 户主关系) out; a bare name without a label is found only as a canary.
NAME_LABELS = (
    "紧急联系人", "联系人", "联络人", "报修人", "报事人", "报案人", "报警人", "投诉人", "举报人", "求助人", "反映人",
    "申请人", "登记人", "来访人", "被访人", "收件人", "寄件人", "收货人", "取件人", "签收人", "缴费人", "付款人",
    "承租人", "出租人", "租住人", "监护人", "代理人", "委托人", "负责人", "经办人", "办理人", "户主", "业主", "住户",
    "租户", "租客", "房东", "车主", "访客", "居民", "客户", "用户", "姓名", "已联系", "联系", "家属", "亲属", "房主",
    "房客", "产权人", "居住人", "入住人", "同住人", "当事人", "对接人",
)  # fmt: skip
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜"
    "崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔汤易常乔赖文樊兰"
    "殷施洪翟安颜倪牛温芦季俞章鲁葛伍庞聂焦柴祝欧柳耿辛路申邢骆鲍卓蒲岳齐梅庄包宁詹左靳祁尚舒宫霍阮涂翁苗毕谷"
    "饶关鞠凌牟邬苑符滕管柯卜裴童阎游项连尤麦祖冉宿仇晏戚屈简巫池蓝景盛丛冷卫杭桂丰姬晋闵娄荣容储栾郎仲佟郁冼"
    "佘苟鄢寇凤戈桑邰揭阙湛粟邝汝习"
)
COMPOUND_SURNAMES = (
    "欧阳", "上官", "司马", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯", "轩辕",
    "令狐", "端木", "澹台", "南宫", "西门", "独孤", "呼延", "申屠", "闻人", "万俟", "钟离", "赫连", "百里", "拓跋",
)  # fmt: skip
# Characters that end a name rather than continue it (particles, titles, verbs that follow a name): 王先生 and
# 李某 are not names here, and 王五也反映 is the name 王五.
_NOT_GIVEN = "的了也和与及或在是请已等说称要来电家先女士生师傅老阿姨叔婶某氏总经理主任姐哥弟妹爸妈们对向将被把从到为就都还又再很不没未无可会能需须应该反映投诉报修联系手机号码身份证楼室单元栋幢门口于"
# Ordinary words that start with a surname character and follow these labels in notices and work orders.
NAME_STOP_WORDS = frozenset((
    "张贴", "陈述", "陈列", "黄色", "黄金", "周知", "周末", "周边", "周围", "周期", "周年", "周一", "周二", "周三", "周四", "周五", "周六", "周日", "孙子",
    "孙女", "马上", "马路", "胡同", "何时", "何处", "何种", "林地", "高度", "高层", "高空", "高峰", "高温", "高速", "高压", "郑重", "谢谢", "谢绝", "许可",
    "许多", "曾经", "董事", "余额", "余下", "杜绝", "程序", "程度", "任何", "任务", "任意", "钟点", "陆续", "范围", "金额", "石材", "夏季", "夏天", "付款",
    "付费", "付清", "方式", "方法", "方面", "方便", "方可", "方案", "方向", "方能", "白天", "白色", "雷电", "龙头", "黎明", "顾客", "顾问", "毛坯", "万一",
    "万元", "钱款", "严禁", "严格", "严重", "常住", "常年", "常用", "文件", "文明", "文化", "施工", "洪水", "安全", "安装", "安排", "安置", "安心", "安静",
    "安放", "温馨", "温度", "季度", "章程", "祝福", "祝愿", "辛苦", "路过", "路面", "路灯", "路口", "申请", "申报", "申领", "齐全", "齐心", "包括", "包裹",
    "包含", "左侧", "左右", "左边", "尚未", "尚无", "舒适", "涂料", "涂鸦", "毕业", "关系", "关于", "关注", "关闭", "关门", "关联", "关键", "关心", "凌晨",
    "符合", "管理", "管道", "管家", "管控", "游泳", "游戏", "项目", "连续", "连接", "尤其", "宿舍", "简单", "简称", "蓝色", "景观", "冷水", "冷气", "卫生",
    "容易", "容量", "储物", "储藏", "戴口", "戴好", "方同", "方提", "方认", "方签", "方负", "方承", "方出", "方表", "方委", "方代",
))  # fmt: skip
_NAME_SEP = r"(?:[：:=\s.·\-]|为)*"
_PY_NAME = (
    # labels repeat greedily (住户 付款人王伟: 付款人 is the label, not 付款 a name after 住户)
    r"(?<!物)(?<![住用客租账开商])(?<!拜)(?:(?:"
    + "|".join(NAME_LABELS)
    + ")"
    + _NAME_SEP
    + r")+(?P<v>(?:"
    + "|".join(COMPOUND_SURNAMES)
    + f"|[{SURNAMES}])[ \u3000]?"
    + rf"(?:(?![{_NOT_GIVEN}])[\u4e00-\u9fff]){{1,2}})"
)
# E-mail; a "TLD" that is a file type (logo@2x.png) is a file name.
EMAIL_CORE = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}"
FILE_TLDS = frozenset((
    "png", "jpg", "jpeg", "gif", "bmp", "webp", "svg", "ico", "tif", "tiff", "heic", "js", "css", "json", "html",
    "htm", "py", "txt", "csv", "parquet", "md", "yaml", "yml", "xml", "sql", "zip", "gz", "log", "pdf",
))  # fmt: skip
# WeChat: a wxid, or an id (6-20 characters, a letter first) after a label: 微信 (or the look-alikes 威信, 薇信,
# V信) or an English one (WeChat, weixin, wx, vx, any case). After an English label and only a space, the id
# must hold a digit, _ or - ("WeChat payment" is prose); glued to it (wxPython, wx_pay) it is a word.
_WX_ID = r"[A-Za-z][A-Za-z0-9_\-]{5,19}"
_WXID = r"(?i:wxid_)[A-Za-z0-9_\-]{6,32}"
_PY_WXID = rf"(?<![A-Za-z0-9_])(?P<v>{_WXID})(?![A-Za-z0-9_\-])"
_PY_WECHAT_ZH = (
    r"(?:[微威薇]|(?<![A-Za-z0-9_])[Vv])信(?:\s?(?:号码?|账号|ID|id|Id))?\s*[:：=]?\s*"
    rf"(?P<v>{_WX_ID})(?![A-Za-z0-9_\-])"
)
_PY_WECHAT_EN = (
    r"(?<![A-Za-z0-9_])(?i:wechat|weixin|wx|vx)"
    r"(?:\s?(?:号码?|账号)\s*[:：=]?\s*|(?:\s?(?i:id))?(?:\s*[:：=]\s*|\s+(?=[A-Za-z]+[0-9_\-])))"
    rf"(?P<v>{_WX_ID})(?![A-Za-z0-9_\-])"
)
# QQ numbers (5-11 digits, maybe grouped: 1234 5678) after a QQ label (QQ号 12345678).
_PY_QQ = r"(?<![A-Za-z0-9_])(?:(?i:qq)|扣扣)(?:号码?)?\s*[:：=]?\s*(?P<v>[1-9](?:[ .\-]?[0-9]){4,10})(?![0-9A-Za-z])"
# Room-level addresses: 3号楼502室, 5幢2单元301, 12号楼1单元1203室, 2单元301室, 3号楼 502, 3#楼502, 3#502室,
# 5-2-301室. A building alone (3号楼, 310107001001-B03) or a building entrance (3号楼2单元) is not personal; a
# room is (502-1 too). # stands for 号 (3#楼); a bare 3# or 3号, and the dashed 5-2-301, need 室 or 房 after it.
_BNUM = "[0-9一二三四五六七八九十]"
_ROOM_SEP = r"[\s,，、.\-]{0,2}"
_NOT_ROOM_AFTER = "年月日时分秒点米元个人辆次件台平万千百户层楼栋幢号套间%"  # 3号楼 300米 is a distance
# a room number ends the match unless it runs on (3号楼 300.5, 502-1) or counts something (3号楼 300米)
_ROOM_END = rf"(?:[室房]|号(?!楼)|(?![0-9A-Za-z/%_]|[.\-][0-9A-Za-z]|\s*[{_NOT_ROOM_AFTER}]))"
# The same room in Rust-regex syntax (no look-around), for Polars: building (b) and entrance (u) captured, the
# room dropped, the character after it (t) kept. Producers use it to generalise a place to 3号楼2单元.
ROOM_GENERALISE_RX = (
    rf"(?P<b>{_BNUM}{{1,3}}(?:号楼|幢|栋|座)|[A-Za-z](?:座|栋|幢)){_ROOM_SEP}(?P<u>{_BNUM}{{1,2}}单元)?{_ROOM_SEP}"
    rf"[0-9]{{3,4}}(?:[室房]|号)?(?P<t>[^0-9A-Za-z{_NOT_ROOM_AFTER}]|$)"
)
# The building number may follow a letter (B3栋, or a token glued to it: ...x3号楼502室) but not a digit.
_ROOM_NO = "[0-9]{3,4}(?:-[0-9]{1,2}(?=[室房]))?"  # 502, 502-1室 (not 3号楼 2026-12: a date)
_PY_ROOM = (
    rf"(?<![0-9])(?:(?:(?<![A-Za-z])[A-Za-z])?{_BNUM}{{1,3}}(?:[号#]楼|幢|栋|座)|(?<![0-9A-Za-z])[A-Za-z](?:座|栋|幢))"
    rf"{_ROOM_SEP}(?:{_BNUM}{{1,2}}单元{_ROOM_SEP})?{_ROOM_NO}{_ROOM_END}"
    rf"|(?<![0-9]){_BNUM}{{1,3}}[号#]{_ROOM_SEP}(?:{_BNUM}{{1,2}}单元{_ROOM_SEP})?{_ROOM_NO}[室房]"
    rf"|(?<![0-9一二三四五六七八九十]){_BNUM}{{1,2}}单元{_ROOM_SEP}{_ROOM_NO}{_ROOM_END}"
    rf"|(?<![0-9.\-])[0-9]{{1,3}}-(?:[0-9]{{1,2}}-)?[0-9]{{3,4}}[室房]"
)

# ---------------------------------------------------------------------------------------------------------
# Python flavour: applied to NFKC-normalised, JSON-unescaped text. Boundaries: no ASCII letter/digit on
# either side, and no decimal point joining a digit (so 0.13800138000 is a float, not a phone); a trailing
# ".0" is still a leak (pandas writes integer columns with nulls as 13800138000.0).
_PRE = r"(?<![0-9A-Za-z])(?<![0-9]\.)"
_POST = r"(?![0-9A-Za-z])(?!\.0*[1-9])"
_END = r"(?![0-9A-Za-z])"
_PY_PLATE = (
    rf"[Ww][Jj]{_PLATE_SEP}?[{PROVINCES}]{_PLATE_SEP}?[0-9A-Za-z]{{4,5}}{_END}"
    rf"|[{PROVINCES}]{_PLATE_SEP}?[A-Za-z]{_PLATE_SEP}?(?:[0-9A-Za-z]{{4,5}}{_PLATE_SUFFIX}|[0-9A-Za-z]{{5,6}}{_END})"
    rf"|使[0-9]{{6}}{_END}"
)

# ---------------------------------------------------------------------------------------------------------
# DuckDB (RE2) flavour, applied after full-width ASCII is translated and \uFF1x / \n escapes are undone in
# SQL. RE2 has no lookaround, so boundaries are consumed; that is fine because it is only used as a row
# filter (regexp_matches) and every candidate is re-checked in Python.


_SQL_ESC = r"\\u[0-9a-fA-F]{4}"


def _sql_chars(chars: str) -> str:
    """RE2 for one of ``chars``, raw or as any JSON ``\\uXXXX`` escape. The SQL side is a prefilter: a superset
    is enough (Python re-checks every candidate after unescaping), and spelling out each character's escape
    made the filter 14 KB, whose RE2 compile (~50 ms) was paid by every scan query and every PII check."""
    return f"(?:[{chars}]|{_SQL_ESC})"


def _sql_word(word: str) -> str:
    """RE2 for ``word`` with each character raw or JSON-escaped."""
    return "".join(_sql_chars(ch) for ch in word)


# ASCII letters are matched raw only: a cell holding an escaped full-width letter (\uff41) goes to the Python
# check whole (SQL_ESCAPED_FULLWIDTH), so no pattern here needs to read one.
_SQL_PROV = _sql_chars(PROVINCES)
_SQL_SUFFIX = f"(?:{_sql_chars('警学挂港澳领试')}|{_sql_word('应急')})"
_SQL_B0 = r"(?:^|[^0-9A-Za-z]|\\u[0-9a-fA-F]{4})"
_SQL_B1 = r"(?:$|[^0-9A-Za-z])"
_SQL_PLATE_CORE = (
    f"(?:(?i:wj){_PLATE_SEP}?{_SQL_PROV}{_PLATE_SEP}?[0-9A-Za-z]{{4,5}}"
    f"|{_SQL_PROV}{_PLATE_SEP}?[A-Za-z]{_PLATE_SEP}?[0-9A-Za-z]{{4,6}}"
    f"|{_sql_chars('使')}[0-9]{{6}})"
)
_SQL_HAN = f"(?:[\u3400-\u4dbf\u4e00-\u9fff]|{_SQL_ESC})"
# Every phone shape, digits or numerals, in one superset: 1[3-9]x, an optional bracket, then 8 digits with up to
# three separators (plain, 3-4-4, 4-3-4, (138)0013-8000). Python tells the shapes and the families apart.
_SQL_D = _sql_chars("0-9" + CN_DIGITS)
_SQL_PHONE = (
    f"{PHONE_PREFIX}?\\(?{_sql_chars(_CN_ONE)}{_sql_chars(_CN_THREE_NINE)}{_SQL_D}\\)?"
    f"{_PH_SEP}?{_SQL_D}{_PH_SEP}?{_SQL_D}{{3}}{_PH_SEP}?{_SQL_D}{{4}}"
)


def _sql_name_start() -> str:
    """A surname (or any escaped character) and the next character. Stop words (住户周知, 联系方式) are left to
    the Python check: excluding them here took 6 KB of character ranges, and this is only a prefilter."""
    firsts = SURNAMES + "".join(sorted({c[0] for c in COMPOUND_SURNAMES} - set(SURNAMES)))
    return f"{_sql_chars(''.join(dict.fromkeys(firsts)))}\\s?{_SQL_HAN}"


# one or more labels as written, or any 2-4 JSON escapes (an escaped label: Python unescapes and re-checks),
# then a name's start. The labels repeat greedily so that 住户 付款人王伟 is one candidate: with a single label,
# the non-overlapping extraction would take 住户 付款 as label and name and lose the 付款人 before 王伟.
_SQL_NAME_HEAD = (
    "(?:(?:"
    + "|".join(sorted(NAME_LABELS, key=len, reverse=True))
    + f"|(?:{_SQL_ESC}){{2,4}})(?:[:：=\\s.·\\-]|{_sql_chars('为')})*)+"
    + _sql_name_start()
)
_SQL_WORD = "[A-Za-z0-9_\\-]"
_SQL_EMAIL = "[A-Za-z0-9._%+\\-]+@[A-Za-z0-9\\-]+(?:\\.[A-Za-z0-9\\-]+)*\\.[A-Za-z]{2,}"
_SQL_GAP = f"(?:[^A-Za-z\\\\]|{_SQL_ESC}){{0,8}}"
_SQL_WECHAT = (
    f"(?:(?i:wxid_){_SQL_WORD}{{6}}"
    f"|(?:{_sql_chars('微威薇Vv')}{_sql_chars('信')}|(?i:wechat|weixin|wx|vx))"
    f"(?:\\s?(?i:id))?{_SQL_GAP}[A-Za-z]{_SQL_WORD}{{5}})"
)
_SQL_QQ = f"(?:(?i:qq)|{_sql_word('扣扣')})(?:[^0-9\\\\]|{_SQL_ESC}){{0,8}}[1-9](?:{_PH_SEP}?[0-9]){{4}}"
_SQL_BNUM = f"(?:[0-9A-Za-z]|{_sql_chars('一二三四五六七八九十')})"
_SQL_ROOM_SEP = f"(?:[\\s,、.\\-]|{_sql_chars('，')}){{0,2}}"
_SQL_ROOM = (
    f"(?:{_SQL_BNUM}{{1,3}}(?:(?:{_sql_chars('号#')}{_sql_chars('楼')}|{_sql_chars('号幢栋座#')}){_SQL_ROOM_SEP}"
    f"(?:{_SQL_BNUM}{{1,2}}{_sql_word('单元')}{_SQL_ROOM_SEP})?|{_sql_word('单元')}{_SQL_ROOM_SEP})[0-9]{{3,4}}"
    f"|[0-9]{{1,3}}-(?:[0-9]{{1,2}}-)?[0-9]{{3,4}}{_sql_chars('室房')})"
)
# Context characters kept around a candidate so Python can re-check boundaries and undo escapes. The leading
# context is lazy: a token starts where the run of context characters starts (the leftmost match), and the
# identifier inside it is the first family that fits from there, not whatever a greedy prefix leaves over
# (1130 0020 0001 0100 03 is an ID, not the context "1" and the phone 130 0020 0001).
_SQL_CTX = r"[0-9A-Za-z.\\]*"
_SQL_LEAD = r"[0-9A-Za-z.\\]*?"
_SQL_CTX_W = r"[0-9A-Za-z._\\]*?"
_SQL_ANY = f"(?:{_SQL_ESC}|[^\\\\])"
SQL_IDENTIFIER_FILTER = (
    f"{_SQL_B0}(?:{ID18_CORE}|{ID15_CORE}|{_SQL_PHONE}){_SQL_B1}"
    f"|{_SQL_PLATE_CORE}(?:{_SQL_SUFFIX}|{_SQL_B1})"
    f"|{_SQL_NAME_HEAD}|{_SQL_EMAIL}|{_SQL_WECHAT}|{_SQL_QQ}|{_SQL_ROOM}"
)
# Candidates are extracted per family group: one regexp_extract_all pass cannot return overlapping matches,
# and a plate's serial may overlap the first group of a spaced ID ("沪W 110000 20000101 0000"). Each token
# keeps the context Python needs: a character before a name's label (物业主管 is no label), the characters
# after a room number (3号楼 300米 is a distance), the whole run of digits and numerals around a phone.
SQL_IDENTIFIER_TOKENS = (
    f"{_SQL_LEAD}(?:{ID18_CORE}|{ID15_CORE}){_SQL_CTX}",
    f"{_SQL_LEAD}{_SQL_PLATE_CORE}{_SQL_SUFFIX}?{_SQL_CTX}",
    f"{_SQL_LEAD}{_SQL_D}*?{_SQL_PHONE}{_SQL_D}*{_SQL_CTX}",
    f"{_SQL_ANY}?{_SQL_NAME_HEAD}\\s?{_SQL_HAN}{{0,2}}",
    f"(?:{_SQL_ESC})*{_SQL_EMAIL}{_SQL_CTX}",
    # the rest of the run: two escapes taken as the label may have read a real label's letters as the id
    f"{_SQL_CTX_W}{_SQL_WECHAT}(?:[A-Za-z0-9_\\-\\s:=]|{_SQL_ESC})*",
    f"{_SQL_CTX_W}{_SQL_QQ}(?:{_PH_SEP}?[0-9A-Za-z])*",
    f"{_SQL_LEAD}{_SQL_ROOM}{_SQL_ANY}{{0,4}}",
)
SQL_FACE_PATTERNS: dict[str, str] = {
    "jpeg": f"(?:^|[^A-Za-z0-9+/]){JPEG_B64}",
    "png": f"(?:^|[^A-Za-z0-9+/]){PNG_B64}",
    "data_uri": DATA_URI,
    "image_url": f"(?i:{_URL_SCHEME}://{_URL_CHAR}*?{_IMAGE_HINT}(?:$|[^A-Za-z0-9_\\-]))",
}
SQL_NUMBER_LIST = NUMBER_LIST
# JSON-escaped full-width ASCII (\uff48\uff54\uff54\uff50 is "http") that the SQL patterns above do not all
# read: such a cell is rare and goes to the Python check whole, so the prefilter is never stricter.
SQL_ESCAPED_FULLWIDTH = r"\\u[fF][fF][0-5][0-9a-fA-F]"
# a label and a name's start: a cell that holds one goes to the Python check whole (``pii_scan._scan_cells``), since
# the non-overlapping token extraction can swallow the next label into a stop word (联系方式 联系人王伟: the token
# 联系方式 联系 is read as the word 方式, and 人王伟 has no label left)
SQL_NAME_HEAD = _SQL_NAME_HEAD
WHOLE_CELL_MAX = 4096  # longer cells keep to the tokens
# Undo the JSON escapes that hide digits and separators from the SQL patterns (full-width digits, Ｘ/ｘ,
# \n-style whitespace, slashes, plate/phone separators). Province characters and letters stay escaped
# and are matched as such.
SQL_UNESCAPES: tuple[tuple[str, str], ...] = (
    (r"\\u[fF][fF]1([0-9])", r"\1"),
    (r"\\u[fF][fF]38", "X"),
    (r"\\u[fF][fF]58", "x"),
    (r"\\[nrtbf]", " "),
    (r"\\/", "/"),
    (r"\\u00[bB]7", "·"),
    (r"\\u2022", "•"),
    (r"\\u30[fF][bB]", "・"),
    (r"\\u3000", " "),
    (r"\\u[fF][fF]0[bB]", "+"),
    (r"\\u[fF][fF]0[dD]", "-"),
    (r"\\u[fF][fF]0[eE]", "."),
    (r"\\u[fF][fF]08", "("),
    (r"\\u[fF][fF]09", ")"),
    (r"\\u[fF][fF]1[aA]", ":"),
    (r"\\u[fF][fF]20", "@"),
    (r"\\u[fF][fF]3[fF]", "_"),
)
FULLWIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
HALFWIDTH = "".join(chr(c) for c in range(0x21, 0x7F)) + " "


# ---------------------------------------------------------------------------------------------------------
# Validators: take the normalised match text, return the canonical value or None.
def _strip(value: str) -> str:
    return re.sub(r"[ .\-·•・]", "", value).upper()


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def id18_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits of a resident ID."""
    return ID_CHECK[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def _decimal(text: str) -> bool:
    """One dot and nothing else between the digits: a decimal number (123456.200101011234), not a grouped ID."""
    return text.count(".") == 1 and not re.search(r"[ \-]", text)


def validate_id18(text: str) -> str | None:
    if _decimal(text):
        return None
    value = _strip(text)
    if len(value) != 18 or not value[:17].isdigit():
        return None
    year, month, day = int(value[6:10]), int(value[10:12]), int(value[12:14])
    if not (1900 <= year <= 2099 and _valid_date(year, month, day)):
        return None
    return value if id18_check_char(value[:17]) == value[17] else None


def validate_id15(text: str) -> str | None:
    if _decimal(text):
        return None
    value = _strip(text)
    if len(value) != 15 or not value.isdigit():
        return None
    ok = _valid_date(1900 + int(value[6:8]), int(value[8:10]), int(value[10:12]))
    return value if ok else None


def validate_phone(text: str) -> str | None:
    digits = re.sub(r"[^0-9]", "", text)
    return digits[-11:] if len(digits) >= 11 else None


def validate_plate(text: str) -> str | None:
    value = _strip(text)
    # A real serial has at least 3 digits (at most 2 letters); 2 leaves room for OCR I/O confusion while
    # rejecting words such as "苏Android".
    serial = value[3:] if value.startswith("WJ") else value[1:] if value.startswith("使") else value[2:]
    return value if sum(ch.isdigit() for ch in serial) >= 2 else None


def validate_cn_phone(text: str) -> str | None:
    """A phone written (partly) in Chinese numerals; all-digit phones are the digit family's."""
    if not any(ch in CN_DIGITS for ch in text):
        return None
    digits = re.sub(r"[^0-9]", "", text.translate(CN_TO_DIGIT))
    return digits[-11:] if len(digits) >= 11 and re.fullmatch(r"1[3-9][0-9]{9}", digits[-11:]) else None


def validate_name(text: str) -> str | None:
    name = re.sub(r"\s", "", text)
    return None if name[:2] in NAME_STOP_WORDS else name


def validate_email(text: str) -> str | None:
    # file names (x@2x.png) and Python/Dagster dunder names (Dagster's run tag __repository__@<code location>)
    # are not addresses
    if text.rsplit(".", 1)[-1].lower() in FILE_TLDS or text.split("@", 1)[0].endswith("__"):
        return None
    return text.lower()


def validate_room(text: str) -> str | None:
    return re.sub(r"[\s,，、.\-]", "", text)


def validate_qq(text: str) -> str | None:
    return re.sub(r"[ .\-]", "", text)


def validate_embedding(text: str) -> str | None:
    n = text.count(",") + 1
    return f"float[{n}]" if n in EMBEDDING_LENGTHS else None


def _identity(text: str) -> str | None:
    return text


@dataclass(frozen=True)
class Family:
    kind: str
    pattern: re.Pattern[str]
    validate: Callable[[str], str | None]
    # Cheap necessary condition (a literal or character class) that skips the full pattern on most text.
    hint: re.Pattern[str] | None = None
    # Named group holding the identifier when the pattern also matches its label (联系人 in 联系人张三): the
    # span redacted and the text validated.
    group: str | None = None

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        if self.hint is None or self.hint.search(text):
            yield from self.pattern.finditer(text)


_CN_NOT_DIGIT = f"(?<![0-9A-Za-z{CN_DIGITS}])"
IDENTIFIER_FAMILIES: tuple[Family, ...] = (
    Family("resident_id", re.compile(_PRE + ID18_CORE + _POST), validate_id18),
    Family("resident_id_15", re.compile(_PRE + ID15_CORE + _POST), validate_id15),
    Family("phone", re.compile(_PRE + PHONE_CORE + _POST), validate_phone),
    Family(
        "phone",
        re.compile(_CN_NOT_DIGIT + CN_PHONE_CORE + f"(?![0-9A-Za-z{CN_DIGITS}])"),
        validate_cn_phone,
        re.compile(f"[{CN_DIGITS}]"),
    ),
    Family("plate", re.compile(_PY_PLATE), validate_plate, re.compile(f"[{PROVINCES}使]")),
    Family("name", re.compile(_PY_NAME), validate_name, re.compile("|".join(NAME_LABELS)), "v"),
    Family(
        "email",
        re.compile(r"(?<![A-Za-z0-9._%+\-])" + EMAIL_CORE + r"(?![A-Za-z0-9\-])"),
        validate_email,
        re.compile("@"),
    ),
    Family("wechat", re.compile(_PY_WXID), _identity, re.compile("(?i:wxid_)"), "v"),
    Family("wechat", re.compile(_PY_WECHAT_ZH), _identity, re.compile("[微威薇Vv]信"), "v"),
    Family("wechat", re.compile(_PY_WECHAT_EN), _identity, re.compile("(?i:wechat|weixin|wx|vx)"), "v"),
    Family("qq", re.compile(_PY_QQ), validate_qq, re.compile("(?i:qq)|扣扣"), "v"),
    Family("room_address", re.compile(_PY_ROOM), validate_room, re.compile("[楼幢栋座号元室房]")),
)
FACE_FAMILIES: tuple[Family, ...] = (
    Family("face_image", re.compile(r"(?<![A-Za-z0-9+/])" + JPEG_B64), _identity, re.compile("/9j/")),
    Family("face_image", re.compile(r"(?<![A-Za-z0-9+/])" + PNG_B64), _identity, re.compile("iVBORw0KGgo")),
    Family("face_image", re.compile(DATA_URI + r"[A-Za-z0-9+/=]*"), _identity, re.compile("(?i);base64,")),
    Family(
        "image_url",
        re.compile(f"(?i:{_URL_SCHEME}://{_URL_CHAR}*?{_IMAGE_HINT}(?![A-Za-z0-9_\\-]){_URL_TAIL}*)"),
        _identity,
        re.compile("://"),
    ),
    Family("face_embedding", re.compile(NUMBER_LIST), validate_embedding, re.compile(r"\[")),
)


# ---------------------------------------------------------------------------------------------------------
# Normalisation with an offset map back to the original text (needed by redact and chunked scans).
_SPECIAL = re.compile(
    r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
    r"|\\u([0-9a-fA-F]{4})"
    r"|\\([nrtbf/])"
    r"|[^\x00-\x7f]+"
)
_ESCAPED_WS = {"n": " ", "r": " ", "t": " ", "b": " ", "f": " ", "/": "/"}


@dataclass(frozen=True)
class NormalisedText:
    """``text`` after JSON-unescaping and NFKC, plus the replaced pieces to map offsets back."""

    text: str
    pieces: tuple[tuple[int, int, int, int], ...] = ()  # (norm_start, norm_end, orig_start, orig_end)
    starts: tuple[int, ...] = ()  # norm_start of each piece, for bisect

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        if not self.pieces:
            return start, end
        return self._map(start, is_end=False), self._map(end, is_end=True)

    def _map(self, pos: int, *, is_end: bool) -> int:
        starts = self.starts
        i = (bisect.bisect_left(starts, pos) if is_end else bisect.bisect_right(starts, pos)) - 1
        if i < 0:
            return pos
        n_start, n_end, o_start, o_end = self.pieces[i]
        if pos < n_end or (is_end and pos == n_end):
            return o_end if is_end else o_start
        return o_end + (pos - n_end)


def _decode_escape(m: re.Match[str]) -> str | None:
    if m.group(1):
        high, low = int(m.group(1), 16), int(m.group(2), 16)
        return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    if m.group(3):
        code = int(m.group(3), 16)
        return "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)
    if m.group(4):
        return _ESCAPED_WS[m.group(4)]
    return None


def normalise(text: str) -> NormalisedText:
    """JSON-unescape ``\\uXXXX``/``\\n``-style sequences and NFKC-normalise, keeping an offset map."""
    if "\\" not in text and (text.isascii() or unicodedata.is_normalized("NFKC", text)):
        return NormalisedText(text)
    out: list[str] = []
    pieces: list[tuple[int, int, int, int]] = []
    last = 0
    n_pos = 0
    for m in _SPECIAL.finditer(text):
        if m.start() > last:
            out.append(text[last : m.start()])
            n_pos += m.start() - last
        decoded = _decode_escape(m)
        if decoded is not None:
            replacement = unicodedata.normalize("NFKC", decoded)
            out.append(replacement)
            pieces.append((n_pos, n_pos + len(replacement), m.start(), m.end()))
            n_pos += len(replacement)
        else:
            run = m.group(0)
            if unicodedata.is_normalized("NFKC", run):
                out.append(run)
                n_pos += len(run)
            else:
                for offset, ch in enumerate(run):
                    norm = unicodedata.normalize("NFKC", ch)
                    out.append(norm)
                    if norm != ch:
                        o = m.start() + offset
                        pieces.append((n_pos, n_pos + len(norm), o, o + 1))
                    n_pos += len(norm)
        last = m.end()
    out.append(text[last:])
    return NormalisedText("".join(out), tuple(pieces), tuple(p[0] for p in pieces))


def canonical_canary(kind: str, value: str) -> str:
    """Names compare as NFKC substrings; every other kind with separators stripped and upper-cased."""
    norm = unicodedata.normalize("NFKC", value).strip()
    if kind == "name":
        return norm
    return re.sub(CANARY_SEPARATOR_CLASS, "", norm).upper()
