"""``--limit CLASS=N``: the parse, the check against the train counts, and the seeded choice of whole groups."""

from __future__ import annotations

import numpy as np
import pytest

from augment.core.dataset import concat
from augment.core.errors import UserError
from augment.core.limits import apply_limit, check_limit, format_limit, limit_choice, parse_limit
from augment.core.splits import carve_train_val


def _hashes(ds, split, cls):
    part = ds.subset((ds.splits == split) & (ds.labels == ds.classes.index(cls)))
    return sorted(part.pixel_hashes().tolist())


def test_parse_limit_takes_canonical_names_and_refuses_bad_parts():
    assert parse_limit("Fear=10, disgusted=5") == {"fear": 10, "disgust": 5}  # canonical names and order
    assert parse_limit(None) == parse_limit("") == {}
    assert format_limit({"fear": 10, "disgust": 5}) == "fear=10,disgust=5"
    for text, words in [
        ("boredom=5", ["--limit boredom=5", "not a class"]),
        ("disgust=0", ["--limit disgust=0", "at least 1"]),
        ("disgust=-3", ["--limit disgust=-3", "at least 1"]),
        ("disgust=few", ["N must be a whole number"]),
        ("disgust", ["write CLASS=N"]),
        ("disgust=5,disgust=6", ["limited twice"]),
    ]:
        with pytest.raises(UserError) as e:
            parse_limit(text)
        assert all(w in str(e.value) for w in words), (text, str(e.value))


def test_check_limit_names_the_class_and_its_count():
    check_limit({"disgust": 30}, {"disgust": 30, "fear": 50})
    with pytest.raises(UserError, match=r"--limit disgust=31: the train split has only 30 real disgust faces"):
        check_limit({"disgust": 31}, {"disgust": 30})
    with pytest.raises(UserError, match="no class contempt"):
        check_limit({"contempt": 3}, {"disgust": 30})


def test_the_choice_is_seeded_and_touches_nothing_but_the_limited_classes_train_faces(demo_ds):
    limit = {"sad": 8, "fear": 12}
    a = apply_limit(demo_ds, limit, 0.1)
    b = apply_limit(demo_ds, limit, 0.1)
    c = apply_limit(demo_ds, limit, 0.1, seed=1)
    full = carve_train_val(demo_ds, 0.1)
    for cls, n in limit.items():
        assert a.counts("train")[cls] == n  # the demo faces have no duplicates: exactly N
        assert _hashes(a, "train", cls) == _hashes(b, "train", cls)  # same seed, same faces
        assert _hashes(a, "train", cls) != _hashes(c, "train", cls)  # another seed, others
        assert set(_hashes(a, "train", cls)) <= set(_hashes(full, "train", cls))
    for cls in demo_ds.classes:
        assert _hashes(a, "val", cls) == _hashes(full, "val", cls)  # validation: an unlimited run's
        assert _hashes(a, "test", cls) == _hashes(demo_ds, "test", cls)  # test untouched
        if cls not in limit:
            assert _hashes(a, "train", cls) == _hashes(full, "train", cls)
    with pytest.raises(UserError, match="disgust=999"):
        apply_limit(demo_ds, {"disgust": 999}, 0.1)
    assert apply_limit(demo_ds, {}, 0.1) is demo_ds


def test_the_choice_keeps_duplicate_groups_and_subjects_whole(demo_ds):
    """Copies of one fear face (identical pixels) and one subject's fear faces are kept or dropped together,
    and the class never keeps more than N."""
    carved = carve_train_val(demo_ds, 0.1)
    k = carved.classes.index("fear")
    idx = np.flatnonzero((carved.splits == "train") & (carved.labels == k))
    copies = carved.subset(np.repeat(idx[:6], 2))  # six faces with a copy each: six groups of two
    ds = concat([carved, copies], name=carved.name)
    subj = np.flatnonzero((ds.splits == "train") & (ds.labels == k))[6:18]
    ds.subjects = ds.subjects.astype(object)
    ds.subjects[subj] = [f"s{i // 3}" for i in range(len(subj))]  # four subjects of three faces
    ds.subjects = ds.subjects.astype(str)
    hashes = ds.pixel_hashes()
    for seed in range(12):
        keep = limit_choice(ds, {"fear": 9}, seed)
        kept = (ds.splits == "train") & (ds.labels == k) & keep
        assert 0 < kept.sum() <= 9
        for h in set(hashes[idx[:6]].tolist()):
            group = hashes == h
            assert keep[group].all() or not keep[group].any(), seed
        for s in {f"s{i}" for i in range(4)}:
            group = ds.subjects == s
            assert keep[group].all() or not keep[group].any(), seed
        assert keep[ds.labels != k].all() and keep[ds.splits != "train"].all()
