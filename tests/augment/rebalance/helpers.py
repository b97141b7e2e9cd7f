"""What the rebalance tests share: the quality filter that passes all, the folder readers, a judge stub."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch

from augment.core.dataset import FaceDataset
from augment.plan import ClassPlan
from augment.synthesis import QualityFilter

OFF = QualityFilter(min_prob=0)  # a 10-step GAN's faces would not pass a real judge
VAL = {"sad": 2, "fear": 2, "disgust": 1}  # train images moved to val, so val exists and is carried over


def image_files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*.png")}


def tree_bytes(out: Path) -> dict[str, bytes]:
    """Every file (hidden ones too) but rebalance.json, which names OUT and says whether it resumed."""
    return {
        str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != "rebalance.json"
    }


def digest(path: Path) -> str:
    return hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()


class StubJudge(torch.nn.Module):
    """Says ``yes`` (probability ~1) for every ``every``-th candidate of a call and ``no`` for the rest."""

    def __init__(self, classes: list[str], yes: str, no: str, every: int):
        super().__init__()
        self.k, self.yes, self.no, self.every = len(classes), classes.index(yes), classes.index(no), every
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        logits = torch.zeros(len(x), self.k)
        hit = torch.arange(len(x)) % self.every == 0
        logits[hit, self.yes] = 30.0
        logits[~hit, self.no] = 30.0
        return logits


def stub_judge(data: FaceDataset, yes: str = "disgust", no: str = "happy", every: int = 16):
    classes = list(reversed(data.classes))  # its own class order: the filter must look the class up
    return StubJudge(classes, yes, no, every), {"classes": classes, "size": data.size, "channels": data.channels}


def only(plan: list[ClassPlan], name: str) -> list[ClassPlan]:
    return [ClassPlan(p.name, p.real, p.target, p.add if p.name == name else 0) for p in plan]


def plan_rows(stdout: str) -> dict[str, list[str]]:
    """The plan table's rows by class: [real, synthetic, final] (box-drawing characters dropped)."""
    rows = {}
    for line in stdout.splitlines():
        tokens = re.findall(r"[\w+,]+", line)
        if len(tokens) == 4 and tokens[0].isalpha():
            rows[tokens[0]] = tokens[1:]
    return rows
