"""Reference PyTorch definitions of st-native's registered models, with the
exact state_dict names st-native's checkpoints use, so that

    import safetensors.torch
    from models import build
    model = build("resnet18", num_classes=10)
    model.load_state_dict(safetensors.torch.load_file("best.safetensors"))
    model.eval()

loads a checkpoint st-native wrote (and st-native loads the state dicts of
these modules, saved with safetensors.torch.save_file). Inputs are images in
[0, 1], N x C x H x W, with no normalisation inside the model.

- small_cnn: the SmallCNN of TRADES/MART/ST for MNIST (1 x 28 x 28).
- resnet18: CIFAR ResNet-18 (3x3 stem, no max-pool), as in the ST paper.
- preact_resnet18: PreAct ResNet-18 of the AWP code.
- wrn34_10, wrn34_5, wrn28_10: the WideResNet of the TRADES code. That code
  builds a `sub_block1` its forward never uses; `WideResNet(sub_block1=True)`
  has it, to load the reference checkpoints (st-native skips it when
  loading them), and the default leaves it out, as st-native's files do.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# --------------------------------------------------------------- SmallCNN ---
class SmallCNN(nn.Module):
    def __init__(self, in_channels=1, num_classes=10, drop=0.5):
        super().__init__()
        self.feature_extractor = nn.Sequential()
        self.feature_extractor.add_module("conv1", nn.Conv2d(in_channels, 32, 3))
        self.feature_extractor.add_module("relu1", nn.ReLU())
        self.feature_extractor.add_module("conv2", nn.Conv2d(32, 32, 3))
        self.feature_extractor.add_module("relu2", nn.ReLU())
        self.feature_extractor.add_module("pool1", nn.MaxPool2d(2))
        self.feature_extractor.add_module("conv3", nn.Conv2d(32, 64, 3))
        self.feature_extractor.add_module("relu3", nn.ReLU())
        self.feature_extractor.add_module("conv4", nn.Conv2d(64, 64, 3))
        self.feature_extractor.add_module("relu4", nn.ReLU())
        self.feature_extractor.add_module("pool2", nn.MaxPool2d(2))
        self.classifier = nn.Sequential()
        self.classifier.add_module("fc1", nn.Linear(64 * 4 * 4, 200))
        self.classifier.add_module("relu1", nn.ReLU())
        self.classifier.add_module("drop", nn.Dropout(drop))
        self.classifier.add_module("fc2", nn.Linear(200, 200))
        self.classifier.add_module("relu2", nn.ReLU())
        self.classifier.add_module("fc3", nn.Linear(200, num_classes))

    def forward(self, x):
        return self.classifier(self.feature_extractor(x).flatten(1))


# -------------------------------------------------------------- ResNet-18 ---
class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, in_channels=3, num_classes=10, width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        cin, layers = width, []
        for i in range(4):
            cout = width << i
            blocks = []
            for b in range(2):
                blocks.append(BasicBlock(cin, cout, 2 if (b == 0 and i > 0) else 1))
                cin = cout
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.linear = nn.Linear(cin, num_classes)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.layer4(self.layer3(self.layer2(self.layer1(h))))
        return self.linear(F.adaptive_avg_pool2d(h, 1).flatten(1))


# ------------------------------------------------------ PreAct ResNet-18 ---
class PreActBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False))

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if hasattr(self, "shortcut") else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(nn.Module):
    def __init__(self, in_channels=3, num_classes=10, width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        cin, layers = width, []
        for i in range(4):
            cout = width << i
            blocks = []
            for b in range(2):
                blocks.append(PreActBlock(cin, cout, 2 if (b == 0 and i > 0) else 1))
                cin = cout
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.bn = nn.BatchNorm2d(cin)
        self.linear = nn.Linear(cin, num_classes)

    def forward(self, x):
        out = self.conv1(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.relu(self.bn(out))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


# ------------------------------------------------- WideResNet (TRADES code) ---
class WideBlock(nn.Module):
    def __init__(self, cin, cout, stride, drop_rate=0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.drop_rate = drop_rate
        self.equal_in_out = cin == cout
        self.convShortcut = (
            None if self.equal_in_out else nn.Conv2d(cin, cout, 1, stride, 0, bias=False)
        )

    def forward(self, x):
        if not self.equal_in_out:
            x = self.relu1(self.bn1(x))
            out = x
        else:
            out = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        return (x if self.equal_in_out else self.convShortcut(x)) + out


class NetworkBlock(nn.Module):
    def __init__(self, n, cin, cout, stride, drop_rate=0.0):
        super().__init__()
        self.layer = nn.Sequential(
            *[WideBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1, drop_rate) for i in range(n)]
        )

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth=34, widen_factor=10, in_channels=3, num_classes=10, drop_rate=0.0, sub_block1=False):
        super().__init__()
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        assert (depth - 4) % 6 == 0
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.block1 = NetworkBlock(n, widths[0], widths[1], 1, drop_rate)
        if sub_block1:
            # Built by the reference code, never used by its forward.
            self.sub_block1 = NetworkBlock(n, widths[0], widths[1], 1, drop_rate)
        self.block2 = NetworkBlock(n, widths[1], widths[2], 2, drop_rate)
        self.block3 = NetworkBlock(n, widths[2], widths[3], 2, drop_rate)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(widths[3], num_classes)
        self.n_channels = widths[3]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                k = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / k))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.bias.data.zero_()

    def forward(self, x):
        out = self.conv1(x)
        out = self.block3(self.block2(self.block1(out)))
        out = self.relu(self.bn1(out))
        out = F.adaptive_avg_pool2d(out, 1)
        return self.fc(out.view(-1, self.n_channels))


# ------------------------------------------------------------- registry ---
def build(name, num_classes=10, in_channels=None, sub_block1=False):
    """The reference module for one of st-native's registered model names."""
    if name == "small_cnn":
        return SmallCNN(in_channels or 1, num_classes)
    if name == "resnet18":
        return ResNet18(in_channels or 3, num_classes)
    if name == "preact_resnet18":
        return PreActResNet18(in_channels or 3, num_classes)
    wrn = {"wrn34_10": (34, 10), "wrn34_5": (34, 5), "wrn28_10": (28, 10)}
    if name in wrn:
        depth, k = wrn[name]
        return WideResNet(depth, k, in_channels or 3, num_classes, sub_block1=sub_block1)
    raise ValueError(f"unknown model {name!r}")


MODELS = ["small_cnn", "resnet18", "preact_resnet18", "wrn34_10", "wrn34_5", "wrn28_10"]
