"""Packed caches keep file bytes where they decode to the cached pixels, PNG otherwise; lossless."""

from __future__ import annotations

import numpy as np

from augment.core.dataset import FaceDataset


def test_packed_cache_round_trips_and_reuses_file_bytes(demo_ds, tmp_path):
    ds = demo_ds.subset(np.arange(40))
    ds.sources[:3] = "not-a-file"  # these must fall back to PNG
    plain, packed = tmp_path / "plain.npz", tmp_path / "packed.npz"
    ds.save(plain)
    ds.save(packed, packed=True)
    back = FaceDataset.load(packed)
    assert np.array_equal(back.images, ds.images)
    assert np.array_equal(back.labels, ds.labels) and list(back.sources) == list(ds.sources)
    with np.load(packed) as z:
        blob, offsets = z["packed_blob"], z["packed_offsets"]
        first_file = open(ds.sources[3], "rb").read()
        assert blob[offsets[3] : offsets[4]].tobytes() == first_file  # the PNG file's own bytes
        assert blob[offsets[0] : offsets[1]].tobytes()[:4] == b"\x89PNG"
        assert "images" not in z.files
