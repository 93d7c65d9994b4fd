"""Why a batch version exists: what changed against the version it corrects, computed from the two version
folders (rows added, removed and changed by the contract's key columns) and from what the two manifests
recorded about their inputs (landing files of the day, contract version, code version).

Used by the file drop (outbox chain) and by ``versions.stamp_for_consumer`` (a consumer's chain, which may
supersede an older outbox version than the outbox's own previous one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import yaml

from exports.publishing.contract_doc import CONTRACT_FILE

DATA_FILE = "data.parquet"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _contract(folder: Path) -> Mapping[str, Any]:
    path = folder / CONTRACT_FILE
    if not path.is_file():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return {}
    return loaded if isinstance(loaded, Mapping) else {}


def compare_rows(old: Path, new: Path, key_columns: list[str]) -> dict[str, Any]:
    """Rows of ``new`` (Parquet) against ``old``: matched on ``key_columns`` when they identify rows in both,
    else compared as multisets of whole rows (then ``changed`` is None: a change is a removal plus an addition)."""
    con = duckdb.connect()
    try:
        for view, path in (("o", old), ("n", new)):
            literal = str(path).replace("'", "''")
            con.execute(f"CREATE TEMP VIEW {view} AS SELECT * FROM read_parquet('{literal}')")
        old_types = {r[0]: r[1] for r in con.execute("DESCRIBE o").fetchall()}
        new_types = {r[0]: r[1] for r in con.execute("DESCRIBE n").fetchall()}
        common = [c for c in new_types if old_types.get(c) == new_types[c]]
        before = con.execute("SELECT count(*) FROM o").fetchone()[0]
        after = con.execute("SELECT count(*) FROM n").fetchone()[0]
        out: dict[str, Any] = {
            "rows": {"before": before, "after": after},
            "columns_added": [c for c in new_types if c not in old_types],
            "columns_removed": [c for c in old_types if c not in new_types],
            "columns_retyped": [c for c in new_types if c in old_types and old_types[c] != new_types[c]],
        }
        keys = [k for k in key_columns if k in common]
        unique = bool(keys) and all(
            con.execute(f"SELECT count(*) = count(DISTINCT ({', '.join(map(_quote, keys))})) FROM {t}").fetchone()[0]
            for t in ("o", "n"))
        if not unique:
            cols = ", ".join(map(_quote, common)) or "1"
            added = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM n EXCEPT ALL SELECT {cols} FROM o)").fetchone()[0]
            removed = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM o EXCEPT ALL SELECT {cols} FROM n)").fetchone()[0]
            out["rows"].update(added=added, removed=removed, changed=None)
            out["matched_on"] = None
            out["columns_changed"] = {}
            return out
        on = " AND ".join(f"o.{_quote(k)} IS NOT DISTINCT FROM n.{_quote(k)}" for k in keys)
        values = [c for c in common if c not in keys]
        added = con.execute(f"SELECT count(*) FROM n ANTI JOIN o ON {on}").fetchone()[0]
        removed = con.execute(f"SELECT count(*) FROM o ANTI JOIN n ON {on}").fetchone()[0]
        differs = " OR ".join(f"o.{_quote(c)} IS DISTINCT FROM n.{_quote(c)}" for c in values) or "false"
        per_column = "".join(f", count(*) FILTER (WHERE o.{_quote(c)} IS DISTINCT FROM n.{_quote(c)})" for c in values)
        counts = con.execute(f"SELECT count(*) FILTER (WHERE {differs}){per_column} FROM o JOIN n ON {on}").fetchone()
        out["rows"].update(added=added, removed=removed, changed=counts[0])
        out["matched_on"] = keys
        out["columns_changed"] = {c: n for c, n in zip(values, counts[1:], strict=True) if n}
        return out
    finally:
        con.close()


def input_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the two manifests recorded differently about their inputs: the contract version, the landing files
    of each (source, day) the dataset is built from (``inputs.landing``: count, bytes and a fingerprint of
    names, sizes and modification times), the code version. Facts, not a claim about which one caused it."""
    out: list[dict[str, Any]] = []
    if old.get("contract_version") != new.get("contract_version"):
        out.append({"kind": "contract_version", "before": old.get("contract_version"),
                    "after": new.get("contract_version")})
    old_landing = (old.get("inputs") or {}).get("landing")
    new_landing = (new.get("inputs") or {}).get("landing")
    if isinstance(old_landing, Mapping) and isinstance(new_landing, Mapping):
        empty = {"files": 0, "bytes": 0, "fingerprint": None}
        for key in sorted(set(old_landing) | set(new_landing)):
            a, b = old_landing.get(key) or empty, new_landing.get(key) or empty
            if a.get("fingerprint") != b.get("fingerprint"):
                out.append({"kind": "landing_files", "input": key,
                            "before": {"files": a.get("files", 0), "bytes": a.get("bytes", 0)},
                            "after": {"files": b.get("files", 0), "bytes": b.get("bytes", 0)}})
    if old.get("code_version") != new.get("code_version"):
        out.append({"kind": "code_version", "before": old.get("code_version"), "after": new.get("code_version")})
    return out


def _trigger_text(t: Mapping[str, Any]) -> tuple[str, str]:
    if t["kind"] == "contract_version":
        return (f"contract version {t['before']} -> {t['after']}", f"合同版本 {t['before']} → {t['after']}")
    if t["kind"] == "landing_files":
        b, a = t["before"], t["after"]
        return (f"landing files {t['input']} ({b['files']} files, {b['bytes']} bytes -> {a['files']} files, "
                f"{a['bytes']} bytes)",
                f"落地文件 {t['input']}（{b['files']}个文件、{b['bytes']}字节 → {a['files']}个文件、{a['bytes']}字节）")
    return (f"code version {t['before']} -> {t['after']}", f"程序版本 {t['before']} → {t['after']}")


def render(correction: dict[str, Any], against_version: int, titles: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``correction`` with ``against.version`` set and its ``reason_en`` / ``reason_zh`` sentences (re)written."""
    titles = titles or {}
    c = {**correction, "against": {**correction.get("against", {}), "version": against_version}}
    rows = c.get("rows")
    if rows is None:  # nothing to compare the rows with
        c["reason_en"] = (f"Corrects version {against_version}: the content differs from version {against_version}, "
                          "which is no longer available to compare row by row.")
        c["reason_zh"] = f"更正第{against_version}版：内容与第{against_version}版不同；该版本已无法获取，无法逐行比较。"
        return c
    cols = c.get("columns_changed") or {}
    en_cols = ", ".join(f"{k} {n}" for k, n in cols.items())
    zh_cols = "、".join(f"{titles.get(k, k)} {n}行" for k, n in cols.items())
    if rows.get("changed") is None:
        en = [f"Corrects version {against_version}: {rows['added']} rows added, {rows['removed']} removed "
              f"(whole rows compared; {rows['before']} -> {rows['after']} rows)"]
        zh = [f"更正第{against_version}版：新增{rows['added']}行，删除{rows['removed']}行（按整行比较；"
              f"{rows['before']}行 → {rows['after']}行）"]
    else:
        en = [f"Corrects version {against_version}: {rows['changed']} rows changed"
              + (f" ({en_cols})" if en_cols else "")
              + f", {rows['added']} added, {rows['removed']} removed ({rows['before']} -> {rows['after']} rows)"]
        zh = [f"更正第{against_version}版：{rows['changed']}行数值变化" + (f"（{zh_cols}）" if zh_cols else "")
              + f"，新增{rows['added']}行，删除{rows['removed']}行（{rows['before']}行 → {rows['after']}行）"]
    for key, en_label, zh_label in (("columns_added", "columns added", "新增字段"),
                                    ("columns_removed", "columns removed", "删除字段"),
                                    ("columns_retyped", "columns retyped", "字段类型变化")):
        if c.get(key):
            en.append(f"{en_label}: {', '.join(c[key])}")
            zh.append(f"{zh_label}：{'、'.join(c[key])}")
    triggers = c.get("triggers") or []
    if triggers:
        texts = [_trigger_text(t) for t in triggers]
        en.append(f"changed since version {against_version}: " + "; ".join(t[0] for t in texts))
        zh.append(f"自第{against_version}版以来变化：" + "；".join(t[1] for t in texts))
    elif c.get("inputs_compared", True):
        en.append("the recorded inputs (landing files of the day, contract and code version) are unchanged: "
                  "an upstream partition of another day may have changed")
        zh.append("记录的输入（当日落地文件、合同版本、程序版本）均未变化，可能是其他日期的上游分区发生了变化")
    else:
        en.append(f"the inputs of version {against_version} were not recorded: trigger unknown")
        zh.append(f"第{against_version}版未记录输入信息，触发原因未知")
    c["reason_en"] = "; ".join(en) + "."
    c["reason_zh"] = "；".join(zh) + "。"
    return c


def describe_correction(old_dir: Path, old_manifest: Mapping[str, Any], new_dir: Path,
                        new_manifest: Mapping[str, Any], against_version: int) -> dict[str, Any]:
    """The ``correction`` block of a manifest whose batch (``new_dir``) corrects the one in ``old_dir``: rows
    compared by the key columns of the contract in ``new_dir``, the inputs that differ, and both sentences."""
    contract = _contract(new_dir)
    titles = {str(c["name"]): str(c.get("title_zh") or c["name"]) for c in contract.get("columns") or []}
    compared = compare_rows(old_dir / DATA_FILE, new_dir / DATA_FILE, list(contract.get("key_columns") or []))
    correction = {
        "against": {"version": against_version, "content_sha256": old_manifest.get("content_sha256"),
                    "generated_at": old_manifest.get("generated_at")},
        **compared,
        "triggers": input_changes(old_manifest, new_manifest),
        "inputs_compared": "inputs" in old_manifest and "inputs" in new_manifest,
    }
    return render(correction, against_version, titles)


def titles_of(folder: Path) -> dict[str, str]:
    """English column name -> title_zh, from the batch's own ``contract.yaml`` (empty when it has none)."""
    return {str(c["name"]): str(c.get("title_zh") or c["name"]) for c in _contract(folder).get("columns") or []}


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
