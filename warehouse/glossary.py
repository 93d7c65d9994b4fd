"""The bilingual dictionary's Chinese side: one reviewed file, ``warehouse/glossary_zh.yaml``, read here.

English comes from the dataset declarations (``kernel.dataset``); the glossary adds a Chinese title and
description per column name, per dataset, and per-dataset overrides where a column name means something else
there. Objects the warehouse makes itself (``dim``, ``meta``, ``audit.row_accounting``, the ``date`` partition
column) have no declaration, so the glossary holds their English text as well.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from kernel.dataset import Dataset

GLOSSARY_PATH = Path(__file__).parent / "glossary_zh.yaml"
# The layer whose datasets are exact twins of gold ones: text falls back to the gold dataset of the same name.
INTERNAL_LAYER = "internal"
LOCAL_SUFFIX = "_local"


@dataclass(frozen=True)
class Text:
    """One entry: a Chinese title and description, and English where no declaration carries it."""

    title_zh: str | None = None
    description_zh: str | None = None
    description_en: str | None = None

    @property
    def complete(self) -> bool:
        return bool(self.title_zh and self.description_zh)


def _text(raw: Mapping | None) -> Text:
    raw = raw or {}
    return Text(raw.get("title_zh"), raw.get("description_zh"), raw.get("description_en"))


@dataclass(frozen=True)
class Glossary:
    raw: Mapping

    @property
    def _columns(self) -> Mapping:
        return self.raw.get("columns") or {}

    @property
    def _datasets(self) -> Mapping:
        return self.raw.get("datasets") or {}

    @property
    def _warehouse(self) -> Mapping:
        return self.raw.get("warehouse") or {}

    def _dataset_entry(self, key: str) -> tuple[Mapping | None, str]:
        """The entry for ``layer/name`` (an exact key, else the first matching ``*`` pattern) and the part of
        the name the ``*`` matched (``{match}`` in the text)."""
        if key in self._datasets:
            return self._datasets[key], ""
        for pattern, entry in self._datasets.items():
            if "*" in pattern and fnmatch.fnmatchcase(key, pattern):
                head, _, tail = pattern.partition("*")
                return entry, key[len(head):len(key) - len(tail) if tail else None]
        return None, ""

    def _candidates(self, layer: str, name: str) -> list[str]:
        keys = [f"{layer}/{name}"]
        if layer == INTERNAL_LAYER:
            keys.append(f"gold/{name}")
        return keys

    def dataset(self, layer: str, name: str) -> Text:
        """Chinese title and description of a declared dataset (an internal one falls back to its gold twin,
        with the glossary's ``internal_note`` appended)."""
        for key in self._candidates(layer, name):
            entry, match = self._dataset_entry(key)
            if entry and (entry.get("title_zh") or entry.get("description_zh")):
                t = _text(entry)
                title, desc = (s.replace("{match}", match) if s else s for s in (t.title_zh, t.description_zh))
                if not key.startswith(f"{layer}/") and layer == INTERNAL_LAYER:
                    note = self.raw.get("internal_note") or {}
                    title = f"{title}{note.get('title_zh', '')}" if title else title
                    desc = f"{desc}{note.get('description_zh', '')}" if desc else desc
                return Text(title, desc)
        return Text()

    def column(self, layer: str, name: str, column: str) -> Text:
        """Chinese text of one column of a dataset: the dataset's override, else the column name's entry."""
        for key in self._candidates(layer, name):
            entry, _ = self._dataset_entry(key)
            override = ((entry or {}).get("columns") or {}).get(column)
            if override:
                return _text(override)
        return _text(self._columns.get(column))

    def warehouse_object(self, qualified: str) -> tuple[Text, dict[str, Text]]:
        """Text of an object the warehouse makes (``schema.name``) and of its own columns."""
        entry = self._warehouse.get(qualified) or {}
        return _text(entry), {c: _text(v) for c, v in (entry.get("columns") or {}).items()}

    def missing(self, datasets: Iterable[Dataset]) -> list[str]:
        """``layer/name.column`` (or ``layer/name`` for the dataset itself) lacking a Chinese title or description."""
        gaps = []
        for ds in datasets:
            if not self.dataset(ds.layer, ds.name).complete:
                gaps.append(ds.key)
            gaps += [f"{ds.key}.{c.name}" for c in ds.columns if not self.column(ds.layer, ds.name, c.name).complete]
        return gaps


def load_glossary(path: Path = GLOSSARY_PATH) -> Glossary:
    return _load(str(path))


@functools.cache
def _load(path: str) -> Glossary:
    return Glossary(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})


def local_text(source: Text, source_en: str | None, tz: str) -> Text:
    """The text of ``<col>_local``, derived from its source column's."""
    title = f"{source.title_zh}（本地时间）" if source.title_zh else None
    desc = (f"{source.title_zh}换算为 {tz} 本地时间（不带时区的 TIMESTAMP，与 gold 的小时、日期口径一致）"
            if source.title_zh else None)
    en = f"{source_en or 'Time'}, as local time in {tz} (TIMESTAMP without time zone, as gold hours and days)"
    return Text(title, desc, en)
