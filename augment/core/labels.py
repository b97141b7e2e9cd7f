"""One label space for every FER dataset.

Datasets name their classes differently (``anger`` vs ``angry``, numeric codes with
different orders); everything downstream works on these canonical names, in this order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CANONICAL_CLASSES: tuple[str, ...] = (
    "neutral",
    "happy",
    "sad",
    "surprise",
    "fear",
    "disgust",
    "angry",
    "contempt",
)

_SYNONYMS: dict[str, str] = {
    "neutral": "neutral",
    "neutrality": "neutral",
    "calm": "neutral",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "smile": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "suprise": "surprise",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "disgust": "disgust",
    "disgusted": "disgust",
    "angry": "angry",
    "anger": "angry",
    "contempt": "contempt",
    "contemptuous": "contempt",
}

# Numeric codes used by the datasets' own annotation files.
FER2013_CODES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
RAFDB_CODES: dict[int, str] = {
    1: "surprise",
    2: "fear",
    3: "disgust",
    4: "happy",
    5: "sad",
    6: "angry",
    7: "neutral",
}
AFFECTNET_CODES: tuple[str, ...] = CANONICAL_CLASSES  # 0..7; 8 none, 9 uncertain, 10 non-face
AFFECTNET_DROPPED: dict[int, str] = {8: "none", 9: "uncertain", 10: "non-face"}


def canonical(name: str) -> str | None:
    """The canonical class for a folder or label name, or None when unknown."""
    key = name.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    return _SYNONYMS.get(key)


def order_classes(names: set[str] | list[str]) -> list[str]:
    """Canonical names sorted into the canonical order, so label indices are stable."""
    unknown = [n for n in names if n not in CANONICAL_CLASSES]
    if unknown:
        raise ValueError(f"not canonical class names: {sorted(unknown)}")
    return [c for c in CANONICAL_CLASSES if c in set(names)]


@dataclass
class ClassSpec:
    """What ``--classes`` asks for: classes to keep and folder names to map."""

    keep: set[str] = field(default_factory=set)
    renames: dict[str, str | None] = field(default_factory=dict)

    def resolve(self, folder: str, label: str | None) -> tuple[str | None, bool]:
        """(class for a folder or None to skip it, whether the folder was unknown)."""
        key = folder.strip().lower()
        if key in self.renames:
            return self.renames[key], False
        if label is None:
            return None, not self.keep
        if self.keep and label not in self.keep:
            return None, False
        return label, False

    def allows(self, label: str) -> bool:
        return not self.keep or label in self.keep or label in self.renames.values()


def parse_class_spec(text: str | None) -> ClassSpec | None:
    """Parse ``--classes``: names limit the classes, ``folder=class`` maps folder names.

    ``"happy,sad"`` keeps only those; ``"joyful=happy,meh=neutral"`` maps unknown
    folder names; ``"other="`` skips a folder.
    """
    if text is None or not text.strip():
        return None
    spec = ClassSpec()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        src, _, dst = part.partition("=")
        if "=" in part and not src.strip():
            raise ValueError(f"--classes: '{part}' maps no folder name; write 'folder=class'")
        target = dst.strip() if "=" in part else src.strip()
        if "=" in part and not target:
            spec.renames[src.strip().lower()] = None
            continue
        canon = canonical(target)
        if canon is None:
            raise ValueError(f"--classes: '{target}' is not a known class; use one of {', '.join(CANONICAL_CLASSES)}")
        if "=" in part:
            spec.renames[src.strip().lower()] = canon
        else:
            spec.keep.add(canon)
    return spec


def resolve_classes(
    requested: str | list[str] | None, available: list[str], owner: str = "the dataset", option: str = "--classes"
) -> list[str]:
    """``--classes disgust,fear`` (or another ``option``) as canonical names, checked against what ``owner`` has."""
    from augment.core.errors import UserError

    if not requested:
        return list(available)
    names = requested.split(",") if isinstance(requested, str) else requested
    out: list[str] = []
    for name in (n.strip() for n in names if n.strip()):
        canon = canonical(name)
        if canon not in available:
            raise UserError(f"{option} {name}: {owner} has {', '.join(available)}")
        if canon not in out:  # 'fear,fear' must not write (and list) each image twice
            out.append(canon)
    return out
