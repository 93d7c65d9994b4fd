"""Datasets of the governance domain (owners' votes, announcements, activities), declared once.

Vote rule: Civil Code art. 278, a function of the matter's item (1-9), in assets/governance/rules.sql; the
item comes from the e-voting platform's matter category through matter_categories.csv.
"""

from __future__ import annotations

from kernel.dataset import (
    LINEAGE,
    PII_TOKEN,
    SUPPRESSION_COLUMNS,
    C,
    Dataset,
    accounting_dataset,
    ingest_dataset,
)
from kernel.expectations import Expect

SOURCES = ("votes", "ballots", "announcements", "activities", "participation")
# the class of an art. 278 item (rules.sql::gov_matter_class): ordinary = more than half agree,
# three_quarter = at least 3/4 agree
MATTER_CLASSES = ("ordinary", "three_quarter")
ART278_ITEMS = tuple(range(1, 10))
CHOICES = ("agree", "oppose", "abstain")
AUTH_METHODS = ("id_property_cert", "face", "paper")
CHANNELS = ("app", "wechat", "paper")
PUBLISHER_TYPES = ("property", "owners_committee", "residents_committee", "street", "party_branch")
ACTIVITY_KINDS = ("volunteer", "party_building", "culture", "sport", "service")
TOKEN_RE = r"^(id_card|phone)_v[0-9]+_[a-z2-7]{32}$"

_COMMUNITY = C("community_id", "VARCHAR", "Community code (from the export folder)", False)


def _quarantine(source: str, record: str) -> Dataset:
    return Dataset(
        "quarantine", f"governance_{source}", f"one row per rejected {source} record",
        f"Every governance {source} record that was not accepted, with exactly one reason (never an identifier). "
        "Whole files: undecodable_file (bytes neither UTF-8 nor GB18030) and unknown_file (a file in the day "
        "folder whose name is not one of the six export names, counted under the source its name starts like, "
        "else under votes), source_line 0. pii_unredactable: free text in which an identifier or a name label "
        "survives redaction.",
        (
            C("community_id", "VARCHAR", "Community code of the export folder"),
            C("record_id", "VARCHAR", f"Platform {record}, if readable (a platform key, not a personal id)"),
            C("reason", "VARCHAR", "Machine-readable reason", False),
            C("detail", "VARCHAR", "Human-readable detail (never a value of an identifier)"),
            *LINEAGE,
        ),
        domain="governance",
    )


# ---- votes: a daily snapshot of every vote open that day (dim_vote) ---------------------------------------
_VOTE_COLS = (
    _COMMUNITY,
    C("vote_id", "VARCHAR", "E-voting platform vote id", False),
    C("title", "VARCHAR", "Matter put to the owners' assembly (identifiers and labelled names redacted)", False),
    C("matter_category", "VARCHAR", "Matter category as the e-voting platform files it (its matterCategory, "
      "表决事项类别)", False),
    C("art278_item", "INTEGER", "Item (1-9) of Civil Code art. 278 the category is, by "
      "matter_categories.csv; a vote whose category maps to none is quarantined (unmapped_matter)", False),
    C("start_ts", "TIMESTAMPTZ", "Voting opens", False),
    C("end_ts", "TIMESTAMPTZ", "Voting closes (the vote closes on this local day)", False),
    C("eligible_owners", "INTEGER", "Owners entitled to vote, counted per unit (专有部分), co-owners as one", False),
    C("eligible_area_m2", "DECIMAL(12,2)", "Total exclusive area of the entitled units, m²", False),
)
VOTES_BRONZE = Dataset(
    "bronze", "governance_votes", "one row per vote in the day's platform snapshot, deduplicated per file",
    "Owners'-assembly votes open on the day, parsed from the e-voting platform's NDJSON snapshot.",
    (*_VOTE_COLS, *LINEAGE), domain="governance")
VOTES_QUARANTINE = _quarantine("votes", "vote id")
VOTES_SILVER = Dataset(
    "silver", "governance_votes", "one row per vote open on the day",
    "Votes open on the day (a vote appears in every daily partition from its start day to its end day).",
    _VOTE_COLS, domain="governance", order_by="vote_id",
    suite=(
        *(Expect.not_null(c.name) for c in _VOTE_COLS),
        Expect.unique("vote_id"),
        Expect.in_set("art278_item", list(ART278_ITEMS)),
        Expect.between("eligible_owners", 1, 100_000),
        Expect.sql("period_ordered", "SELECT * FROM {batch} WHERE end_ts <= start_ts",
                   description="a vote closes after it opens"),
    ),
)

# ---- ballots (fct_ballot) ---------------------------------------------------------------------------------
_BALLOT_COLS = (
    _COMMUNITY,
    C("vote_id", "VARCHAR", "Vote the ballot belongs to", False),
    C("ballot_id", "VARCHAR", "Platform ballot id (paper ballots: the paper-entry serial)", False),
    C("room_token", "VARCHAR", "Keyed token of the unit (building-unit-room) as written: the voting unit, one "
      "ballot per room per vote; the room itself is a home address and never kept", False, PII_TOKEN),
    C("owner_token", "VARCHAR", "Keyed token of the owner: id_card token when an ID number was verified, "
      "else phone token; names are dropped", False, PII_TOKEN),
    C("area_m2", "DECIMAL(10,2)", "Exclusive area of the unit, m²", False),
    C("choice", "VARCHAR", "agree | oppose | abstain", False),
    C("auth_method", "VARCHAR", "id_property_cert | face | paper", False),
    C("channel", "VARCHAR", "app | wechat | paper", False),
    C("cast_ts", "TIMESTAMPTZ", "When the ballot was cast (paper: entered at the count on the end day)", False),
)
BALLOTS_BRONZE = Dataset(
    "bronze", "governance_ballots", "one row per ballot as delivered (e-ballots and paper), deduplicated per file",
    "Ballots from the e-voting export (NDJSON) and the paper-ballot entry sheet (GB18030 CSV); identifiers "
    "tokenised, names and face-check snapshots dropped at parse time.",
    (*_BALLOT_COLS, *LINEAGE), domain="governance")
BALLOTS_QUARANTINE = _quarantine("ballots", "ballot id")
BALLOTS_SILVER = Dataset(
    "silver", "governance_ballots", "one row per counted ballot: one per room per vote (over the whole vote)",
    "Counted ballots. Rule: one ballot per room per vote; the earliest e-ballot wins, a paper ballot counts "
    "only for a room without an e-ballot; co-owner, transferred-owner and overlapping paper ballots are "
    "duplicates. Earlier partitions of the same vote are read, so days are processed in order.",
    _BALLOT_COLS, domain="governance", order_by="vote_id, room_token",
    suite=(
        *(Expect.not_null(c.name) for c in _BALLOT_COLS),
        Expect.unique("ballot_id"),
        Expect.unique("vote_id", "room_token", name="one_ballot_per_room_per_vote"),
        Expect.in_set("choice", list(CHOICES)),
        Expect.in_set("auth_method", list(AUTH_METHODS)),
        Expect.in_set("channel", list(CHANNELS)),
        Expect.between("area_m2", 5, 2000),
        Expect.regex("owner_token", TOKEN_RE, description="owners are keyed tokens, never raw ids"),
        Expect.sql("paper_is_paper", "SELECT * FROM {batch} WHERE (channel = 'paper') <> (auth_method = 'paper')",
                   description="paper ballots, and only they, are authenticated on paper"),
    ),
)

# ---- announcements (fct_announcement) ----------------------------------------------------------------------
_NOTICE_COLS = (
    _COMMUNITY,
    C("notice_id", "VARCHAR", "Community-app notice id", False),
    C("publisher_type", "VARCHAR", "property | owners_committee | residents_committee | street | party_branch", False),
    C("category", "VARCHAR", "Notice category as the app files it", False),
    C("title", "VARCHAR", "Title (identifiers redacted)", False),
    C("publish_ts", "TIMESTAMPTZ", "Published", False),
    C("expire_ts", "TIMESTAMPTZ", "Expires"),
    C("reads", "INTEGER", "Read count at export time", False),
    C("body_text", "VARCHAR", "Body with HTML tags and entities removed and identifiers redacted "
      "([REDACTED:<kind>]); null when the body was dropped"),
    C("body_redactions", "INTEGER", "Identifiers redacted from title and body", False),
)
ANNOUNCEMENTS_BRONZE = Dataset(
    "bronze", "governance_announcements", "one row per notice as delivered, deduplicated per file",
    "Community-app notices: HTML stripped and personal data redacted at parse time.",
    (*_NOTICE_COLS, *LINEAGE), domain="governance")
ANNOUNCEMENTS_QUARANTINE = _quarantine("announcements", "notice id")
ANNOUNCEMENTS_SILVER = Dataset(
    "silver", "governance_announcements", "one row per notice published on the day",
    "Notices published on the day, text cleaned and redacted.",
    _NOTICE_COLS, domain="governance", order_by="notice_id",
    suite=(
        *(Expect.not_null(c) for c in ("community_id", "notice_id", "publisher_type", "title", "publish_ts")),
        Expect.unique("notice_id"),
        Expect.in_set("publisher_type", list(PUBLISHER_TYPES)),
        Expect.between("reads", 0, 1_000_000),
        Expect.sql("no_html_left", "SELECT * FROM {batch} WHERE regexp_matches(body_text, '<[a-zA-Z/][^>]*>|&[a-z]+;')",
                   description="bodies hold plain text: no tag or entity survives"),
    ),
)

# ---- activities and participation ---------------------------------------------------------------------------
_ACTIVITY_COLS = (
    _COMMUNITY,
    C("activity_id", "VARCHAR", "Community-app activity id", False),
    C("kind", "VARCHAR", "volunteer | party_building | culture | sport | service", False),
    C("title", "VARCHAR", "Activity name (identifiers and labelled names redacted)", False),
    C("organiser", "VARCHAR", "Organising body (publisher type), never a person", False),
    C("start_ts", "TIMESTAMPTZ", "Start", False),
    C("end_ts", "TIMESTAMPTZ", "End", False),
    C("location", "VARCHAR", "Place within the community (identifiers and labelled names redacted)"),
    C("volunteer_hours", "DECIMAL(5,2)", "Hours credited to each volunteer who checks in (volunteer kind)"),
)
ACTIVITIES_BRONZE = Dataset(
    "bronze", "governance_activities", "one row per activity as delivered, deduplicated per file",
    "Community activities held on the day (community-app NDJSON).",
    (*_ACTIVITY_COLS, *LINEAGE), domain="governance")
ACTIVITIES_QUARANTINE = _quarantine("activities", "activity id")
ACTIVITIES_SILVER = Dataset(
    "silver", "governance_activities", "one row per activity held on the day",
    "Community activities held on the day.", _ACTIVITY_COLS, domain="governance", order_by="activity_id",
    suite=(
        *(Expect.not_null(c) for c in ("community_id", "activity_id", "kind", "start_ts", "end_ts")),
        Expect.unique("activity_id"),
        Expect.in_set("kind", list(ACTIVITY_KINDS)),
        Expect.between("volunteer_hours", 0, 24),
        Expect.sql("period_ordered", "SELECT * FROM {batch} WHERE end_ts < start_ts",
                   description="an activity ends after it starts"),
    ),
)

_PART_COLS = (
    _COMMUNITY,
    C("activity_id", "VARCHAR", "Activity", False),
    C("person_token", "VARCHAR", "Keyed phone token of the participant (names dropped)", False, PII_TOKEN),
    C("signup_ts", "TIMESTAMPTZ", "Signed up"),
    C("checkin_ts", "TIMESTAMPTZ", "Checked in (null: signed up, did not attend)"),
    C("volunteer_hours", "DECIMAL(5,2)", "Volunteer hours credited"),
)
PARTICIPATION_BRONZE = Dataset(
    "bronze", "governance_participation", "one row per sign-in sheet row as delivered, deduplicated per file",
    "Activity sign-up and QR check-in export (CSV, UTF-8 or GB18030); phones tokenised, names dropped.",
    (*_PART_COLS, *LINEAGE), domain="governance")
PARTICIPATION_QUARANTINE = _quarantine("participation", "activity id")
PARTICIPATION_SILVER = Dataset(
    "silver", "governance_participation", "one row per person and activity",
    "Participation: a reused QR check-in (the same person checked in twice) is a duplicate; the earliest "
    "check-in is kept.",
    _PART_COLS, domain="governance", order_by="activity_id, person_token",
    suite=(
        *(Expect.not_null(c) for c in ("community_id", "activity_id", "person_token")),
        Expect.unique("activity_id", "person_token", name="one_row_per_person_and_activity"),
        Expect.regex("person_token", r"^phone_v[0-9]+_[a-z2-7]{32}$",
                     description="participants are keyed tokens, never raw phones"),
        Expect.between("volunteer_hours", 0, 24),
        Expect.sql("hours_need_checkin", "SELECT * FROM {batch} WHERE volunteer_hours > 0 AND checkin_ts IS NULL",
                   description="volunteer hours are credited only to people who checked in"),
    ),
)

INGEST_GOVERNANCE = ingest_dataset(
    "ingest_governance", "governance",
    "What the governance bronze parser read per source: files, lines, landed records, rows written.",
    (C("face_artefacts_dropped", "BIGINT", "Face-check snapshot URLs dropped (ballots)", False),),
)

# ---- gold ----------------------------------------------------------------------------------------------------
VOTE_OUTCOMES = Dataset(
    "gold", "vote_outcomes", "one row per vote closing on the partition day",
    "Final result of each vote on its end day under Civil Code art. 278 (rules.sql: the majority is a "
    "function of the matter's item). Kept in the warehouse, NOT exported (no contract, by decision): the "
    "per-vote result is published to the owners by the committee; the district receives the outcomes as "
    "counts per community, complete month and matter class (governance_month_final). The owner counts here "
    "are unsuppressed, so a per-vote export would need write_protected on them first.",
    (
        _COMMUNITY,
        C("vote_id", "VARCHAR", "Vote", False),
        C("art278_item", "INTEGER", "Civil Code art. 278 item (1-9) of the matter", False),
        C("matter_class", "VARCHAR", "ordinary (items 1-5, 9: more than half of participating area and "
          "owners agree) | three_quarter (items 6-8: at least 3/4 of both)", False),
        C("start_ts", "TIMESTAMPTZ", "Voting opened", False),
        C("end_ts", "TIMESTAMPTZ", "Voting closed", False),
        C("eligible_owners", "INTEGER", "Owners entitled (units)", False),
        C("eligible_area_m2", "DECIMAL(12,2)", "Area entitled, m²", False),
        C("participating_owners", "INTEGER", "Units with a counted ballot (abstentions included)", False),
        C("participating_area_m2", "DECIMAL(12,2)", "Area of those units, m²", False),
        C("agree_owners", "INTEGER", "Units that agreed", False),
        C("agree_area_m2", "DECIMAL(12,2)", "Area of units that agreed, m²", False),
        C("quorum_met", "BOOLEAN", "Participating area >= 2/3 of eligible area AND participating owners >= 2/3", False),
        C("passed", "BOOLEAN", "Quorum met and the majority of the matter class reached (by area AND owners)",
          False),
    ),
    domain="governance", order_by="community_id, vote_id",
    suite=(
        Expect.unique("vote_id"),
        *(Expect.not_null(c) for c in ("art278_item", "matter_class", "quorum_met", "passed")),
        Expect.in_set("art278_item", list(ART278_ITEMS)),
        Expect.in_set("matter_class", list(MATTER_CLASSES)),
        Expect.sql("participants_within_eligible",
                   "SELECT * FROM {batch} WHERE participating_owners > eligible_owners "
                   "OR agree_owners > participating_owners OR agree_area_m2 > participating_area_m2",
                   description="agreeing <= participating <= eligible, by owners and by area"),
        Expect.sql("passed_needs_quorum", "SELECT * FROM {batch} WHERE passed AND NOT quorum_met",
                   description="no vote passes without the two-thirds participation quorum"),
    ),
)

GOVERNANCE_MONTHLY = Dataset(
    "gold", "governance_monthly", "one row per community for the partition day's month, month to date",
    "Governance per community, month to date, FOR ANALYSTS IN THE WAREHOUSE ONLY: the partition for day D "
    "holds figures from the 1st of D's month to D (the month's last day is final). Participant and ballot "
    "counts are small-cell suppressed, but consecutive partitions differ by a few people, so this table must "
    "never be published: the export reads governance_month_final.",
    (
        _COMMUNITY,
        C("month", "DATE", "First day of the month", False),
        C("votes_held", "BIGINT", "Votes open on at least one day from the 1st to D", False),
        C("votes_closed", "BIGINT", "Votes whose end day falls between the 1st and D", False),
        C("votes_quorum_met", "BIGINT", "Closed votes that reached the two-thirds participation quorum", False),
        C("votes_passed", "BIGINT", "Closed votes that passed", False),
        C("votes_closed_ordinary", "BIGINT", "Closed votes on ordinary matters (Civil Code art. 278 items "
          "1-5 and 9, maintenance-fund use included: more than half must agree)", False),
        C("votes_passed_ordinary", "BIGINT", "Closed votes on ordinary matters that passed", False),
        C("votes_closed_three_quarter", "BIGINT", "Closed votes on three-quarter matters (art. 278 items "
          "6-8: raising the maintenance fund, altering or rebuilding, changing the use of common parts)",
          False),
        C("votes_passed_three_quarter", "BIGINT", "Closed votes on three-quarter matters that passed", False),
        C("turnout_headcount_pct", "DOUBLE", "Participating / eligible owners over closed votes, % (null: none "
          "closed, or suppressed)"),
        C("turnout_area_pct", "DOUBLE", "Participating / eligible area over closed votes, %"),
        C("ballots_counted", "BIGINT", "Counted ballots (units) in closed votes: people"),
        C("activities", "BIGINT", "Activities held", False),
        C("participants", "BIGINT", "Distinct people who checked in to an activity: people"),
        C("volunteer_hours", "DOUBLE", "Volunteer hours credited"),
        C("announcements", "BIGINT", "Notices published", False),
        *SUPPRESSION_COLUMNS,
    ),
    domain="governance", keys=("community_id", "month"), counts=("ballots_counted", "participants"), derived=("turnout_headcount_pct", "turnout_area_pct", "volunteer_hours"), order_by="community_id",
    suite=(
        *(Expect.not_null(c) for c in ("community_id", "month", "votes_held", "votes_closed", "votes_quorum_met",
                                       "votes_passed", "votes_closed_ordinary", "votes_passed_ordinary",
                                       "votes_closed_three_quarter", "votes_passed_three_quarter",
                                       "activities", "announcements", "suppressed")),
        Expect.unique("community_id", "month", name="one_row_per_community_month"),
        Expect.between("turnout_headcount_pct", 0, 100),
        Expect.between("turnout_area_pct", 0, 100),
        Expect.sql("passed_within_closed", "SELECT * FROM {batch} WHERE votes_passed > votes_quorum_met "
                   "OR votes_quorum_met > votes_closed",
                   description="passed <= quorum met <= closed: only closed votes with a quorum can pass"),
        Expect.sql("classes_add_up",
                   "SELECT * FROM {batch} "
                   "WHERE votes_closed_ordinary + votes_closed_three_quarter <> votes_closed "
                   "OR votes_passed_ordinary + votes_passed_three_quarter <> votes_passed "
                   "OR votes_passed_ordinary > votes_closed_ordinary "
                   "OR votes_passed_three_quarter > votes_closed_three_quarter",
                   description="every closed vote is in one matter class; passed <= closed per class"),
        Expect.sql("one_month", "SELECT * FROM {batch} WHERE month <> (SELECT min(month) FROM {batch})",
                   description="a partition holds one month"),
    ),
)

# Published: one complete month, once. The partition for D holds the previous month's final figures (a copy
# of governance_monthly's partition for D-1, already suppressed) when D is the 1st; on every other day it is
# written EMPTY. A (community, month) row is thus published exactly once and no two publications can be
# subtracted to reveal a small count (month-to-date republication would: 37 today - 35 yesterday = 2 people).
GOVERNANCE_MONTH_FINAL = Dataset(
    "gold", "governance_month_final",
    "one row per community for the month before the partition day; rows only on the 1st of a month",
    "Governance per community and COMPLETE month, for publication: on the 1st of a month the partition holds "
    "the previous month's final figures (governance_monthly of the month's last day, small cells "
    "suppressed); on every other day it is empty, so figures are published once per month and cannot be "
    "differenced. Withheld (empty) when the previous month's last day was never built.",
    GOVERNANCE_MONTHLY.columns,
    domain="governance", order_by="community_id", keys=GOVERNANCE_MONTHLY.keys, counts=GOVERNANCE_MONTHLY.counts,
    derived=GOVERNANCE_MONTHLY.derived,
    suite=GOVERNANCE_MONTHLY.suite,
)

DATASETS: tuple[Dataset, ...] = (
    VOTES_BRONZE, VOTES_QUARANTINE, VOTES_SILVER,
    BALLOTS_BRONZE, BALLOTS_QUARANTINE, BALLOTS_SILVER,
    ANNOUNCEMENTS_BRONZE, ANNOUNCEMENTS_QUARANTINE, ANNOUNCEMENTS_SILVER,
    ACTIVITIES_BRONZE, ACTIVITIES_QUARANTINE, ACTIVITIES_SILVER,
    PARTICIPATION_BRONZE, PARTICIPATION_QUARANTINE, PARTICIPATION_SILVER,
    INGEST_GOVERNANCE, VOTE_OUTCOMES, GOVERNANCE_MONTHLY, GOVERNANCE_MONTH_FINAL,
    *(accounting_dataset(f"governance_{s}") for s in SOURCES),
)
