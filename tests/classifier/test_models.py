from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from augment.core.runtime import count_parameters
from classifier.models import (
    MODEL_NAMES,
    FerCNN,
    PretrainedReport,
    ResEmoteNet,
    ResNet18,
    build_model,
    classifier_head,
    default_image_size,
)

# Small widths keep the shape tests fast on CPU; resnet18 has no width multiplier.
SMALL_WIDTH = {"resemotenet": 0.125, "resnet18": 1.0, "simple-deep-cnn": 0.25, "simple-cnn": 0.5, "fer-cnn": 0.25}


def _small(name: str, in_channels: int = 1, image_size: int = 48, num_classes: int = 7, **kw) -> nn.Module:
    return build_model(
        name, num_classes, in_channels=in_channels, image_size=image_size, width=SMALL_WIDTH[name], **kw
    ).eval()


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("size", [48, 64])
def test_forward_and_features_shapes(name: str, in_channels: int, size: int) -> None:
    model = _small(name, in_channels=in_channels, image_size=size)
    x = torch.randn(2, in_channels, size, size)
    with torch.no_grad():
        logits = model(x)
        feats = model.features(x)
        again = model.head(feats)
    assert logits.shape == (2, 7)
    assert feats.shape == (2, model.feature_dim)
    torch.testing.assert_close(logits, again)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_wrong_channel_count_is_rejected(name: str) -> None:
    model = _small(name, in_channels=1)
    with pytest.raises(ValueError, match="expects input"):
        model(torch.randn(2, 3, 48, 48))


def test_resemotenet_gray_stems() -> None:
    repeat = ResEmoteNet(7, in_channels=1, width=0.125, gray_stem="repeat")
    native = ResEmoteNet(7, in_channels=1, width=0.125, gray_stem="native")
    assert repeat.stem[0][0].in_channels == 3
    assert native.stem[0][0].in_channels == 1
    with pytest.raises(ValueError, match="gray_stem"):
        ResEmoteNet(7, in_channels=1, gray_stem="bogus")


def test_resemotenet_full_width_parameter_count_and_width() -> None:
    model = build_model("resemotenet", 7, in_channels=1, image_size=64)
    n_full = count_parameters(model)
    assert 75_000_000 <= n_full <= 85_000_000
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 64, 64)).shape == (1, 7)
    n_quarter = count_parameters(build_model("resemotenet", 7, width=0.25))
    assert n_quarter < n_full / 10
    # Tiny widths still give usable layers: >= 8 channels, >= 1 SE hidden unit.
    tiny = ResEmoteNet(7, width=0.01)
    assert tiny.stem[0][0].out_channels == 8
    assert tiny.se.fc[0].out_features >= 1


def test_resemotenet_head_width_widens_the_mlp_alone() -> None:
    narrow = build_model("resemotenet", 7, width=0.25)
    wide_head = build_model("resemotenet", 7, width=0.25, head_width=1.0)
    assert [m.out_features for m in narrow.mlp if isinstance(m, torch.nn.Linear)] == [256, 128, 64]
    assert [m.out_features for m in wide_head.mlp if isinstance(m, torch.nn.Linear)] == [1024, 512, 256]
    assert wide_head.feature_dim == 256 and wide_head.head.in_features == 256
    narrow_convs = [m.weight.shape for m in narrow.modules() if isinstance(m, torch.nn.Conv2d)]
    assert narrow_convs == [m.weight.shape for m in wide_head.modules() if isinstance(m, torch.nn.Conv2d)]
    wide_head.eval()
    with torch.no_grad():
        assert wide_head(torch.randn(2, 1, 48, 48)).shape == (2, 7)
    with pytest.raises(ValueError, match="head_width applies to resemotenet only"):
        build_model("fer-cnn", 7, head_width=1.0)


@pytest.mark.parametrize("name", ["simple-deep-cnn", "simple-cnn"])
def test_width_multiplier_shrinks_simple_models(name: str) -> None:
    assert count_parameters(build_model(name, 7, width=0.5)) < count_parameters(build_model(name, 7))


def test_resnet18_matches_torchvision_layout() -> None:
    ours = ResNet18(7, in_channels=3)
    ref = torchvision.models.resnet18(weights=None, num_classes=7)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert count_parameters(ours) == count_parameters(ref)
    assert ours.fc.in_features == 512 and ours.fc.out_features == 7


def test_resnet18_small_stem() -> None:
    model = build_model("resnet18", 7, in_channels=1, small_stem=True)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert model.conv1.in_channels == 1
    assert isinstance(model.maxpool, nn.Identity)
    default = build_model("resnet18", 7, in_channels=1)
    assert default.conv1.kernel_size == (7, 7) and default.conv1.stride == (2, 2)
    assert isinstance(default.maxpool, nn.MaxPool2d)


def test_resnet18_pretrained_into_gray_model(tmp_path: Path) -> None:
    source = torchvision.models.resnet18(weights=None).state_dict()
    ckpt = tmp_path / "imagenet.pth"
    torch.save({"state_dict": source}, ckpt)
    model = build_model("resnet18", 7, in_channels=1, pretrained=ckpt)
    report = model.pretrained_report
    assert isinstance(report, PretrainedReport) and report.path == ckpt
    state = model.state_dict()
    torch.testing.assert_close(state["conv1.weight"], source["conv1.weight"].sum(dim=1, keepdim=True))
    torch.testing.assert_close(state["layer3.1.conv2.weight"], source["layer3.1.conv2.weight"])
    torch.testing.assert_close(state["bn1.running_var"], source["bn1.running_var"])
    assert {"fc.weight", "fc.bias"} <= set(report.skipped)
    assert state["fc.weight"].shape == (7, 512)
    assert "conv1.weight" in report.loaded
    assert report.missing == ["fc.weight", "fc.bias"]


def test_resnet18_pretrained_small_stem_skips_conv1(tmp_path: Path) -> None:
    source = torchvision.models.resnet18(weights=None).state_dict()
    ckpt = tmp_path / "raw.pth"
    torch.save(source, ckpt)  # raw state dict, no wrapper
    model = build_model("resnet18", 7, in_channels=3, small_stem=True, pretrained=ckpt)
    assert "conv1.weight" in model.pretrained_report.skipped
    torch.testing.assert_close(model.state_dict()["layer1.0.conv1.weight"], source["layer1.0.conv1.weight"])


def test_resnet18_pretrained_bad_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pth"):
        build_model("resnet18", 7, pretrained=garbage)
    unrelated = tmp_path / "unrelated.pth"
    torch.save({"foo.weight": torch.zeros(3)}, unrelated)
    with pytest.raises(ValueError, match="unrelated.pth"):
        build_model("resnet18", 7, pretrained=unrelated)
    with pytest.raises(ValueError, match="missing.pth"):
        build_model("resnet18", 7, pretrained=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="only supported for resnet18"):
        build_model("simple-cnn", 7, pretrained=unrelated)


def test_simple_cnn_learns_a_clear_signal() -> None:
    n, size = 32, 48
    labels = torch.arange(n) % 2
    x = torch.randn(n, 1, size, size) * 0.5
    x[labels == 1, :, : size // 2] += 1.5  # class 1: bright upper half
    model = build_model("simple-cnn", 2, width=0.5).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    with torch.no_grad():
        start = loss_fn(model.eval()(x), labels).item()
    model.train()
    for _ in range(15):
        opt.zero_grad()
        loss_fn(model(x), labels).backward()
        opt.step()
    with torch.no_grad():
        end = loss_fn(model.eval()(x), labels).item()
    assert end < 0.5 * start


def test_unknown_name_and_helpers() -> None:
    with pytest.raises(ValueError) as err:
        build_model("vgg99", 7)
    for name in MODEL_NAMES:
        assert name in str(err.value)
    assert default_image_size("resemotenet") == 64
    assert all(default_image_size(n) == 48 for n in MODEL_NAMES if n != "resemotenet")
    with pytest.raises(ValueError, match="width"):
        build_model("resnet18", 7, width=0.5)
    with pytest.raises(ValueError, match="in_channels"):
        build_model("simple-cnn", 7, in_channels=2)


def test_fer_cnn_is_the_compact_recipe() -> None:
    model = build_model("fer-cnn", 7)
    assert isinstance(model, FerCNN)
    convs = [m for m in model.body if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64, 128, 128, 192, 192]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.body) == 8
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.body) == 4
    assert model.dropout.p == 0.3 and model.head.in_features == model.feature_dim == 192
    # 3x3 convs without bias (BN follows): 9 * (1*32 + 32*32 + 32*64 + 64*64 + 64*128 + 128*128 + 128*192 + 192*192),
    # BN scale and shift for 2 * (32 + 64 + 128 + 192) channels, head 192*7 + 7
    assert count_parameters(model) == 9 * 93_216 + 2 * 2 * 416 + 192 * 7 + 7 == 841_959
    half = build_model("fer-cnn", 7, width=0.5)
    assert [c.out_channels for c in half.body if isinstance(c, nn.Conv2d)][::2] == [16, 32, 64, 96]
    assert count_parameters(half) < count_parameters(model) / 3
    with torch.no_grad():  # global pooling: any size from 16 px
        assert model.eval()(torch.randn(2, 1, 16, 16)).shape == (2, 7)
    with pytest.raises(ValueError, match="too small"):
        model(torch.randn(2, 1, 8, 8))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_classifier_head_is_the_last_linear_layer(name: str) -> None:
    model = _small(name)
    head = classifier_head(model)
    assert isinstance(head, nn.Linear) and head.out_features == 7
    if name == "resnet18":
        assert head is model.fc
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(head(model.features(x)), model(x))
    with pytest.raises(TypeError, match="no final linear layer"):
        classifier_head(nn.Sequential(nn.Linear(3, 2)))
