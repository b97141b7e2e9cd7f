"""Classifier model zoo for facial expression recognition.

Every model maps a normalised float batch (N, C, H, W) to raw logits (N, num_classes) and exposes
``features(x) -> (N, feature_dim)``, the vector fed to its final linear layer ``head``, so that
``forward(x) == head(features(x))`` (``classifier_head(model)`` returns it).  The feature space is what a
classifier-based Fréchet distance is computed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, ResNet

MODEL_NAMES = ("resemotenet", "resnet18", "simple-deep-cnn", "simple-cnn", "fer-cnn")
GRAY_STEMS = ("repeat", "native")


def _scaled(channels: int, width: float) -> int:
    """Channel count after the width multiplier; floored at 8 so tiny widths still train."""
    return max(8, int(round(channels * width)))


def _check_width(width: float) -> None:
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")


def _check_in_channels(in_channels: int) -> None:
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")


def _check_input(x: Tensor, in_channels: int, model: str) -> None:
    """Fail loudly on a channel mismatch: a 3-channel batch would otherwise pass the 1->3 repeat."""
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(f"{model} expects input of shape (N, {in_channels}, H, W), got {tuple(x.shape)}")


def _pooled_size(image_size: int, n_pools: int) -> int:
    """Spatial size after ``n_pools`` 2x2 max-pools (floor), as used to size a flatten layer."""
    size = image_size
    for _ in range(n_pools):
        size //= 2
    if size < 1:
        raise ValueError(f"image_size {image_size} is too small for {n_pools} 2x pooling stages")
    return size


# --------------------------------------------------------------------------------------------------
# ResEmoteNet (Roy et al., IEEE Signal Processing Letters 2024)
# --------------------------------------------------------------------------------------------------


class SEBlock(nn.Module):
    """Squeeze-and-excitation: reweights channels by a gate computed from their global means."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        gate = self.fc(self.pool(x).flatten(1))
        return x * gate[:, :, None, None]


class ResidualBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity or 1x1 projection shortcut (as in ResEmoteNet)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride), nn.BatchNorm2d(out_ch))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResEmoteNet(nn.Module):
    """ResEmoteNet as published: conv stem, SE block, three stride-2 residual blocks, 4-layer MLP.

    Designed for 64x64 inputs (works at 48 px too thanks to global pooling).  For grayscale input the
    published recipe repeats the channel to RGB (``gray_stem="repeat"``, done inside ``forward``);
    ``gray_stem="native"`` instead gives the first conv a single input channel.  ``width`` scales every
    conv and hidden FC width (minimum 8); at 1.0 the model has about 80M parameters. ``head_width`` scales the
    MLP alone (None: as ``width``): a narrowed model may keep the published 1024-512-256 head, whose three
    dropout-0.5 layers starve a head a quarter as wide.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 1,
        width: float = 1.0,
        gray_stem: str = "repeat",
        head_width: float | None = None,
    ) -> None:
        super().__init__()
        _check_in_channels(in_channels)
        _check_width(width)
        head_width = width if head_width is None else head_width
        _check_width(head_width)
        if gray_stem not in GRAY_STEMS:
            raise ValueError(f"gray_stem must be one of {GRAY_STEMS}, got {gray_stem!r}")
        self.in_channels = in_channels
        self.repeat_gray = in_channels == 1 and gray_stem == "repeat"
        stem_in = 3 if self.repeat_gray else in_channels
        c1, c2, c3 = (_scaled(c, width) for c in (64, 128, 256))
        r1, r2, r3 = (_scaled(c, width) for c in (512, 1024, 2048))
        f1, f2, f3 = (_scaled(c, head_width) for c in (1024, 512, 256))

        def stem_block(cin: int, cout: int, dropout: float) -> nn.Sequential:
            layers: list[nn.Module] = [
                nn.Conv2d(cin, cout, 3, padding=1),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            return nn.Sequential(*layers)

        self.stem = nn.Sequential(stem_block(stem_in, c1, 0.2), stem_block(c1, c2, 0.2), stem_block(c2, c3, 0.0))
        self.se = SEBlock(c3, reduction=16)
        self.res_blocks = nn.Sequential(
            ResidualBlock(c3, r1, stride=2), ResidualBlock(r1, r2, stride=2), ResidualBlock(r2, r3, stride=2)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.mlp = nn.Sequential(
            nn.Linear(r3, f1), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(f1, f2), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(f2, f3), nn.ReLU(inplace=True), nn.Dropout(0.5),
        )  # fmt: skip
        self.head = nn.Linear(f3, num_classes)
        self.feature_dim = f3

    def features(self, x: Tensor) -> Tensor:
        """Output of the last hidden FC layer (N, feature_dim), i.e. the input of ``head``."""
        _check_input(x, self.in_channels, "ResEmoteNet")
        if self.repeat_gray:
            x = x.expand(-1, 3, -1, -1)
        x = self.se(self.stem(x))
        x = self.pool(self.res_blocks(x)).flatten(1)
        return self.mlp(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


# --------------------------------------------------------------------------------------------------
# ResNet-18 (torchvision)
# --------------------------------------------------------------------------------------------------


@dataclass
class PretrainedReport:
    """What happened when loading a pretrained checkpoint, so callers can log or assert on it."""

    path: Path
    loaded: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # checkpoint key -> reason
    missing: list[str] = field(default_factory=list)  # model keys left at their fresh initialisation


class ResNet18(ResNet):
    """torchvision ResNet-18, trained from scratch by default, adapted to grayscale and small faces.

    Built exactly as ``torchvision.models.resnet18(weights=None)`` (same class, blocks and parameter
    names, so ImageNet checkpoints load key for key).  ``in_channels=1`` swaps conv1 for a 1-channel
    conv; ``small_stem=True`` replaces the 7x7/2 conv + max-pool by a 3x3/1 conv and no pooling, which
    keeps spatial resolution on 48-64 px inputs.  ``fc`` is a fresh Linear(512, num_classes).
    """

    def __init__(self, num_classes: int, in_channels: int = 1, small_stem: bool = False) -> None:
        _check_in_channels(in_channels)
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
        self.in_channels = in_channels
        self.small_stem = small_stem
        if small_stem:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        elif in_channels != 3:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        if small_stem or in_channels != 3:
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.feature_dim = self.fc.in_features
        self.pretrained_report: PretrainedReport | None = None

    @property
    def head(self) -> nn.Linear:
        """The final classifier layer (torchvision's ``fc``), under the zoo-wide name."""
        return self.fc

    def features(self, x: Tensor) -> Tensor:
        """Globally pooled layer4 output (N, 512), the input of ``fc``."""
        _check_input(x, self.in_channels, "ResNet18")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    """Read a local checkpoint safely (``weights_only``) and unwrap common container layouts."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling, zip and OS errors all mean "not a usable checkpoint"
        raise ValueError(f"cannot read pretrained weights from {path}: {exc}") from exc
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if (
        not isinstance(obj, Mapping)
        or not obj
        or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())
    ):
        raise ValueError(f"{path} does not contain a state dict (a mapping of parameter names to tensors)")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):  # saved from DataParallel / DDP
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def load_resnet18_pretrained(model: ResNet18, path: Path) -> PretrainedReport:
    """Load ImageNet weights from a local file into ``model`` without ever downloading.

    ``fc.*`` is always skipped (different classes).  For a 1-channel 7x7 conv1 the RGB kernels are
    summed over the input-channel dim, which gives the same response to a gray image repeated to RGB;
    with ``small_stem`` conv1 has another shape and is skipped.  Raises ``ValueError`` naming the file
    if it is not a readable state dict or if no key matches.
    """
    path = Path(path)
    source = _read_state_dict(path)
    target = model.state_dict()
    report = PretrainedReport(path=path)
    to_load: dict[str, Tensor] = {}
    for key, value in source.items():
        if key.startswith("fc."):
            report.skipped[key] = "classifier head is task specific"
            continue
        if key not in target:
            report.skipped[key] = "no such key in model"
            continue
        if key == "conv1.weight" and model.small_stem:
            report.skipped[key] = "small stem uses a 3x3 conv1"
            continue
        if key == "conv1.weight" and model.in_channels == 1 and value.dim() == 4 and value.shape[1] == 3:
            value = value.sum(dim=1, keepdim=True)
        if value.shape != target[key].shape:
            report.skipped[key] = f"shape {tuple(value.shape)} != model {tuple(target[key].shape)}"
            continue
        to_load[key] = value
        report.loaded.append(key)
    if not to_load:
        raise ValueError(f"no parameter in {path} matches ResNet-18 (checked {len(source)} keys)")
    model.load_state_dict(to_load, strict=False)
    report.missing = [k for k in target if k not in to_load]
    model.pretrained_report = report
    return report


# --------------------------------------------------------------------------------------------------
# Keras-tutorial style baselines
# --------------------------------------------------------------------------------------------------


class _FixedSizeCNN(nn.Module):
    """A conv ``body`` then a dense ``mlp`` sized for one input size; ``head`` gives the logits."""

    in_channels: int
    image_size: int
    body: nn.Module
    mlp: nn.Module
    head: nn.Linear

    def features(self, x: Tensor) -> Tensor:
        """Output of the last hidden dense layer (N, feature_dim), the input of ``head``."""
        name = type(self).__name__
        _check_input(x, self.in_channels, name)
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"{name} built for {self.image_size} px, got {tuple(x.shape[-2:])}")
        return self.mlp(self.body(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class SimpleDeepCNN(_FixedSizeCNN):
    """The FER2013 baseline CNN of many Keras tutorials (4 conv stages, two BN'd dense layers).

    'same' padding everywhere, so the flatten size is ``c4 * (image_size // 16) ** 2``: it is computed
    from ``image_size`` at construction (48 px -> 3x3, 64 px -> 4x4), as the Keras Flatten does.
    """

    def __init__(self, num_classes: int, in_channels: int = 1, image_size: int = 48, width: float = 1.0) -> None:
        super().__init__()
        _check_in_channels(in_channels)
        _check_width(width)
        self.in_channels = in_channels
        self.image_size = image_size
        c1, c2, c3, c4 = (_scaled(c, width) for c in (32, 64, 128, 512))
        d1, d2 = _scaled(256, width), _scaled(512, width)

        def stage(cin: int, cout: int, kernel: int) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, kernel, padding=kernel // 2),
                nn.ReLU(inplace=True),
                nn.BatchNorm2d(cout),
                nn.MaxPool2d(2),
                nn.Dropout(0.25),
            ]

        self.body = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1),
            nn.ReLU(inplace=True),
            *stage(c1, c2, 3),
            *stage(c2, c3, 5),
            *stage(c3, c4, 3),
            *stage(c4, c4, 3),
        )
        side = _pooled_size(image_size, 4)
        self.mlp = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c4 * side * side, d1), nn.BatchNorm1d(d1), nn.ReLU(inplace=True), nn.Dropout(0.25),
            nn.Linear(d1, d2), nn.BatchNorm1d(d2), nn.ReLU(inplace=True), nn.Dropout(0.25),
        )  # fmt: skip
        self.head = nn.Linear(d2, num_classes)
        self.feature_dim = d2


class SimpleCNN(_FixedSizeCNN):
    """A cheap three-stage CNN for smoke runs and quick experiments."""

    def __init__(self, num_classes: int, in_channels: int = 1, image_size: int = 48, width: float = 1.0) -> None:
        super().__init__()
        _check_in_channels(in_channels)
        _check_width(width)
        self.in_channels = in_channels
        self.image_size = image_size
        c1, c2, c3 = (_scaled(c, width) for c in (32, 64, 128))
        hidden = _scaled(128, width)
        layers: list[nn.Module] = []
        for cin, cout in ((in_channels, c1), (c1, c2), (c2, c3)):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.body = nn.Sequential(*layers)
        side = _pooled_size(image_size, 3)
        self.mlp = nn.Sequential(
            nn.Flatten(), nn.Linear(c3 * side * side, hidden), nn.ReLU(inplace=True), nn.Dropout(0.5)
        )
        self.head = nn.Linear(hidden, num_classes)
        self.feature_dim = hidden


# --------------------------------------------------------------------------------------------------
# Compact FER CNN (the CPU budget's model)
# --------------------------------------------------------------------------------------------------


class FerCNN(nn.Module):
    """A compact CNN that trains to about 0.66 accuracy on FER2013 in 12 epochs on a CPU.

    Four blocks of two 3x3 conv-BN-ReLU layers and a 2x2 max-pool at 32/64/128/192 channels (times
    ``width``, minimum 8), global average pooling, dropout 0.3 and a linear ``head``. Global pooling makes
    it size-agnostic (48 px by design; at least 16 px for the four pools).
    """

    def __init__(self, num_classes: int, in_channels: int = 1, width: float = 1.0) -> None:
        super().__init__()
        _check_in_channels(in_channels)
        _check_width(width)
        self.in_channels = in_channels
        layers: list[nn.Module] = []
        cin = in_channels
        for channels in (32, 64, 128, 192):
            cout = _scaled(channels, width)
            for conv_in in (cin, cout):
                layers += [nn.Conv2d(conv_in, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
            layers.append(nn.MaxPool2d(2))
            cin = cout
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(cin, num_classes)
        self.feature_dim = cin

    def features(self, x: Tensor) -> Tensor:
        """Globally pooled last block (N, feature_dim), after dropout: the input of ``head``."""
        _check_input(x, self.in_channels, "FerCNN")
        _pooled_size(min(x.shape[-2:]), 4)
        return self.dropout(self.pool(self.body(x)).flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def classifier_head(model: nn.Module) -> nn.Linear:
    """The model's final linear layer, the one ``--refit-epochs`` re-fits (``fc`` in ResNet18, ``head`` elsewhere)."""
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        raise TypeError(f"{type(model).__name__} has no final linear layer named 'head'")
    return head


# --------------------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------------------


def default_image_size(name: str) -> int:
    """Input size each architecture was designed for (ResEmoteNet: 64 px; FER2013 models: 48 px)."""
    _check_name(name)
    return 64 if name == "resemotenet" else 48


def _check_name(name: str) -> None:
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODEL_NAMES)}")


def build_model(
    name: str,
    num_classes: int,
    in_channels: int = 1,
    image_size: int = 48,
    width: float = 1.0,
    small_stem: bool = False,
    pretrained: Path | None = None,
    gray_stem: str = "repeat",
    head_width: float = 0.0,
) -> nn.Module:
    """Build a classifier by name so training scripts and configs can select it with a string.

    ``small_stem`` and ``pretrained`` apply to resnet18 only (``small_stem`` is ignored elsewhere,
    ``pretrained`` raises); ``width`` is not supported by resnet18; ``gray_stem`` only matters for
    resemotenet with 1 input channel; ``head_width`` (0: as ``width``) applies to resemotenet only;
    ``image_size`` sizes the flatten layer of the simple CNNs (fer-cnn pools globally and takes any size
    from 16 px).
    """
    _check_name(name)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if pretrained is not None and name != "resnet18":
        raise ValueError(f"pretrained weights are only supported for resnet18, not {name!r}")
    if head_width and name != "resemotenet":
        raise ValueError(f"head_width applies to resemotenet only, not {name!r}")
    if name == "resemotenet":
        return ResEmoteNet(num_classes, in_channels, width, gray_stem, head_width or None)
    if name == "resnet18":
        if width != 1.0:
            raise ValueError(f"resnet18 has no width multiplier (got width={width})")
        model = ResNet18(num_classes, in_channels=in_channels, small_stem=small_stem)
        if pretrained is not None:
            load_resnet18_pretrained(model, pretrained)
        return model
    if name == "fer-cnn":
        return FerCNN(num_classes, in_channels=in_channels, width=width)
    if name == "simple-deep-cnn":
        return SimpleDeepCNN(num_classes, in_channels=in_channels, image_size=image_size, width=width)
    return SimpleCNN(num_classes, in_channels=in_channels, image_size=image_size, width=width)
