"""Face artefacts in vendor payloads are counted at parse time and never extracted into typed columns."""

from __future__ import annotations

import base64
import json

import duckdb
import numpy as np

from assets.privacy.biometrics import face_counts_sql
from quality.pii_scan import scan_text


def _event(**data) -> str:
    """An access-control OnEventNotify line (Hikvision ISC shape) with the given data fields."""
    return json.dumps({"method": "OnEventNotify", "params": {"ability": "event_acs", "events": [
        {"eventId": "e1", "eventType": 196893, "happenTime": "2026-11-20T07:20:51.531+08:00",
         "srcType": "door", "data": {"ExtEventPersonNo": "P001", "ExtEventInOut": 1, **data}}]}})


def test_face_artefacts_are_counted_per_kind():
    jpeg = base64.b64encode(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4).decode()
    vector = np.round(np.random.default_rng(1).normal(size=128), 4).tolist()
    lines = [
        _event(ExtEventPictureURL="http://10.1.2.3:6120/pic?=d2=i1a5*face.jpg"),
        _event(FaceImage=jpeg),
        _event(faceFeature=vector),
        _event(),  # a card swipe carries nothing
    ]
    con = duckdb.connect()
    con.execute("CREATE TABLE raw AS SELECT unnest(?) AS line", [lines])
    rows = con.execute(f"SELECT {face_counts_sql('line')} FROM raw").fetchall()
    counts = [r[0] for r in rows]
    assert counts[0]["face_keys"] == 1 and counts[0]["image_urls"] == 1
    assert counts[1]["face_keys"] == 1 and counts[1]["images"] == 1
    assert counts[2]["face_keys"] == 1 and counts[2]["embeddings"] == 1
    assert counts[3] == {"face_keys": 0, "images": 0, "image_urls": 0, "embeddings": 0}


def test_whitelisted_extraction_leaves_nothing_for_the_scanner():
    """What a parser keeps (a declared struct) holds no face artefact even when the line does."""
    line = _event(ExtEventPictureURL="https://isc.example.cn/pic/face/123.jpg",
                  faceFeature=[0.1] * 256)
    con = duckdb.connect()
    kept = con.execute(
        "SELECT json_transform(?, '{\"params\": {\"events\": [{\"eventId\": \"VARCHAR\", \"happenTime\": \"VARCHAR\", "
        "\"data\": {\"ExtEventInOut\": \"INTEGER\"}}]}}')::VARCHAR", [line]).fetchall()[0][0]
    assert scan_text(line)  # the raw line is full of biometrics
    assert scan_text(kept) == []
