"""Datasets of the services domain, declared once (see warehouse/dataset.py)."""

from __future__ import annotations

from warehouse.dataset import Dataset

DATASETS: tuple[Dataset, ...] = ()
