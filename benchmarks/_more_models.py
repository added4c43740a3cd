"""AlexNet, GoogLeNet (Inception v1, with its LRN), DenseNet-121 and ShuffleNet (v1, 3
groups) as ``torch.nn`` modules with their papers' (and torchvision's) layer shapes, for
``onnx_speed.py``; random weights. Each module names the inner layer the AM step maximises
(``INNER``: the module, and the prefix of its ONNX node names)."""

from __future__ import annotations

INNER = {"alexnet": ("features.8", "/features/features.8/"),
         "googlenet": ("inception4c", "/inception4c/"),
         "densenet121": ("block3", "/block3/"),
         "shufflenet": ("stage3", "/stage3/")}  # fmt: skip


def more_model(name: str, torch):
    nn = torch.nn

    class AlexNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
                nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
                nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 256, 3, padding=1),
                nn.ReLU(), nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
            self.classifier = nn.Sequential(
                nn.Dropout(), nn.Linear(256 * 36, 4096), nn.ReLU(), nn.Dropout(),
                nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000))  # fmt: skip

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    class Inception(nn.Module):
        def __init__(self, cin, c1, r3, c3, r5, c5, cp):
            super().__init__()
            relu = nn.ReLU
            self.b1 = nn.Sequential(nn.Conv2d(cin, c1, 1), relu())
            self.b3 = nn.Sequential(nn.Conv2d(cin, r3, 1), relu(), nn.Conv2d(r3, c3, 3, padding=1),
                                    relu())  # fmt: skip
            self.b5 = nn.Sequential(nn.Conv2d(cin, r5, 1), relu(), nn.Conv2d(r5, c5, 5, padding=2),
                                    relu())  # fmt: skip
            self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(cin, cp, 1), relu())

        def forward(self, x):
            return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)

    class GoogLeNet(nn.Module):
        def __init__(self):
            super().__init__()
            pool, lrn = (lambda: nn.MaxPool2d(3, 2, ceil_mode=True),  # noqa: E731
                         lambda: nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0))  # noqa: E731
            self.stem = nn.Sequential(
                nn.Conv2d(3, 64, 7, 2, 3), nn.ReLU(), pool(), lrn(), nn.Conv2d(64, 64, 1),
                nn.ReLU(), nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(), lrn(), pool())
            self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
            self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
            self.pool3 = pool()
            self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
            self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
            self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
            self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
            self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
            self.pool4 = pool()
            self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
            self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
            self.fc = nn.Linear(1024, 1000)

        def forward(self, x):
            x = self.pool3(self.inception3b(self.inception3a(self.stem(x))))
            for k in "abcde":
                x = getattr(self, f"inception4{k}")(x)
            x = self.inception5b(self.inception5a(self.pool4(x)))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    def stem(cout, k):  # a strided convolution, normalised, then max pooling: a quarter size
        return nn.Sequential(nn.Conv2d(3, cout, k, 2, k // 2, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(), nn.MaxPool2d(3, 2, 1))  # fmt: skip

    def bn_relu_conv(cin, cout, k):
        return [nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, k, padding=k // 2,
                                                         bias=False)]  # fmt: skip

    class DenseLayer(nn.Module):
        def __init__(self, cin, growth=32):
            super().__init__()
            self.f = nn.Sequential(*bn_relu_conv(cin, 4 * growth, 1),
                                   *bn_relu_conv(4 * growth, growth, 3))  # fmt: skip

        def forward(self, x):
            return torch.cat([x, self.f(x)], 1)

    class DenseNet121(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, c = stem(64, 7), 64
            for i, n in enumerate((6, 12, 24, 16), 1):
                layers = []
                for _ in range(n):
                    layers.append(DenseLayer(c))
                    c += 32
                if i < 4:  # a transition: half the channels, half the size
                    layers += [*bn_relu_conv(c, c // 2, 1), nn.AvgPool2d(2)]
                    c //= 2
                setattr(self, f"block{i}", nn.Sequential(*layers))
            self.head = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
            self.fc = nn.Linear(c, 1000)

        def forward(self, x):
            x = self.block4(self.block3(self.block2(self.block1(self.stem(x)))))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.head(x), 1), 1))

    class ShuffleUnit(nn.Module):  # grouped 1x1, shuffle, depthwise 3x3, grouped 1x1
        def __init__(self, cin, cout, stride, groups=3):
            super().__init__()
            self.stride, self.groups = stride, groups
            mid = cout // 4
            out = cout - cin if stride == 2 else cout
            self.g1 = nn.Sequential(nn.Conv2d(cin, mid, 1, groups=groups if cin != 24 else 1,
                                              bias=False), nn.BatchNorm2d(mid), nn.ReLU())
            self.dw = nn.Sequential(nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False),
                                    nn.BatchNorm2d(mid))  # fmt: skip
            self.g2 = nn.Sequential(nn.Conv2d(mid, out, 1, groups=groups, bias=False),
                                    nn.BatchNorm2d(out))  # fmt: skip

        def forward(self, x):
            h = self.g1(x)
            n, c, hh, ww = h.shape
            h = h.view(n, self.groups, c // self.groups, hh, ww).transpose(1, 2)
            h = self.g2(self.dw(h.reshape(n, c, hh, ww)))
            if self.stride == 2:
                return torch.relu(torch.cat([nn.functional.avg_pool2d(x, 3, 2, 1), h], 1))
            return torch.relu(x + h)

    class ShuffleNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, c = stem(24, 3), 24
            for i, (cout, n) in enumerate(((240, 4), (480, 8), (960, 4)), 2):
                units = [ShuffleUnit(c, cout, 2)] + [ShuffleUnit(cout, cout, 1)
                                                      for _ in range(n - 1)]  # fmt: skip
                setattr(self, f"stage{i}", nn.Sequential(*units))
                c = cout
            self.fc = nn.Linear(c, 1000)

        def forward(self, x):
            x = self.stage4(self.stage3(self.stage2(self.stem(x))))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    return {"alexnet": AlexNet, "googlenet": GoogLeNet, "densenet121": DenseNet121,
            "shufflenet": ShuffleNet}[name]()  # fmt: skip
