"""Pulling from the vendor platforms: windows, paging, retries, signing, cursors, atomic landing with provenance."""
