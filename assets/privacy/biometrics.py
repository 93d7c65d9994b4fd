"""No biometrics past landing: face artefacts are never extracted, only counted, at parse time.

Parsers extract the fields they need with ``json_transform`` into a declared struct (a whitelist), so face
pictures, URLs, base64 images and feature vectors are never copied out of the raw line. What is counted,
per raw line, uses the PII scanner's own face patterns (one definition of "face artefact" in Neuron).
"""

from __future__ import annotations

from quality.pii_patterns import NUMBER_LIST, SQL_FACE_PATTERNS

EMBEDDING_LENGTHS = (128, 256, 512)

# JSON keys vendors use for face pictures, picture URLs and feature vectors (Hikvision ISC/ISAPI, GA/T 1400,
# agbox); their presence is counted even when the value is empty or unrecognisable.
FACE_KEYS = ("ExtEventPictureURL", "picUrl", "PicUrl", "pictureUrl", "faceUrl", "FaceUrl", "facePicUrl",
             "FacePicture", "faceImage", "FaceImage", "SubImageList", "eventPic", "feature", "Feature",
             "faceFeature", "FeatureData", "modelData")


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def face_counts_sql(line: str) -> str:
    """A DuckDB STRUCT of face-artefact counts for a raw JSON line column (never the artefacts themselves).

    Fields: face_keys (vendor face fields present), images (base64 JPEG/PNG or data: URIs), image_urls,
    embeddings (number arrays of 128/256/512 values).
    """
    key_pattern = _lit('"(?:' + "|".join(FACE_KEYS) + ')"[[:space:]]*:')
    lengths = ", ".join(map(str, EMBEDDING_LENGTHS))
    n_items = "length(l) - length(replace(l, ',', '')) + 1"
    images = " + ".join(
        f"len(regexp_extract_all({line}, {_lit(SQL_FACE_PATTERNS[k])}))" for k in ("jpeg", "png", "data_uri")
    )
    return (
        "{"
        f"'face_keys': len(regexp_extract_all({line}, {key_pattern})), "
        f"'images': CASE WHEN contains({line}, '/9j/') OR contains({line}, 'iVBORw0KGgo') "
        f"OR contains({line}, 'data:image') THEN {images} ELSE 0 END, "
        f"'image_urls': CASE WHEN contains({line}, '://') "
        f"THEN len(regexp_extract_all({line}, {_lit(SQL_FACE_PATTERNS['image_url'])})) ELSE 0 END, "
        f"'embeddings': CASE WHEN contains({line}, '[') THEN len(list_filter(regexp_extract_all({line}, "
        f"{_lit(NUMBER_LIST)}), lambda l: {n_items} IN ({lengths}))) ELSE 0 END"
        "}"
    )
