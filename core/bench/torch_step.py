"""The KD training step of `npm run bench`, in PyTorch, for the speed comparison (run by core/bench/bench.ts).

Same MobileFaceNet as core/models/mobilefacenet.ts (Chen et al. 2018, Table 1: conv3x3/2, dw3x3, 15 inverted-residual
bottlenecks with BN and PReLU, conv1x1 512, GDConv, linear conv1x1, BN), Adam, MSE on L2-normalised embeddings
against fixed targets. Prints one JSON line. Usage: torch_step.py SIZE BATCH THREADS STEPS WARMUP
"""
import json
import statistics
import sys
import time

import torch
from torch import nn

BOTTLENECKS = [(2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1)]


def conv_bn(cin, cout, k, s, groups=1, prelu=True, pad=None):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2 if pad is None else pad, groups=groups, bias=False), nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)]
    if prelu:
        layers.append(nn.PReLU(cout, init=0.25))
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    def __init__(self, cin, cout, t, s):
        super().__init__()
        self.residual = s == 1 and cin == cout
        self.body = nn.Sequential(conv_bn(cin, cin * t, 1, 1), conv_bn(cin * t, cin * t, 3, s, groups=cin * t), conv_bn(cin * t, cout, 1, 1, prelu=False))

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class MobileFaceNet(nn.Module):
    def __init__(self, size, dim=128):
        super().__init__()
        layers = [conv_bn(3, 64, 3, 2), conv_bn(64, 64, 3, 1, groups=64)]
        cin = 64
        for t, c, n, s in BOTTLENECKS:
            for i in range(n):
                layers.append(Bottleneck(cin, c, t, s if i == 0 else 1))
                cin = c
        k = size // 16
        layers += [conv_bn(cin, 512, 1, 1), conv_bn(512, 512, k, 1, groups=512, prelu=False, pad=0), conv_bn(512, dim, 1, 1, prelu=False)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return torch.flatten(self.net(x), 1)


def main():
    size, batch, threads, steps, warmup = (int(a) for a in sys.argv[1:6])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = MobileFaceNet(size).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, size, size)
    target = nn.functional.normalize(torch.randn(batch, 128), dim=1)

    def step():
        opt.zero_grad(set_to_none=True)
        y = nn.functional.normalize(model(x), dim=1)
        loss = ((y - target) ** 2).mean()
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(), "size": size, "batch": batch,
        "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "stepSec": times, "medianStepSec": med, "imagesPerSec": batch / med,
    }))


if __name__ == "__main__":
    main()
