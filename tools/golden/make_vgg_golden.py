#!/usr/bin/env python3
"""Write a seeded random VGG16 (or VGG16-BN) in torchvision's layout plus a PyTorch golden output.

Usage: python3 make_vgg_golden.py OUTDIR [--bn] [--size 32] [--seed 0] [--hidden 4096]

Writes OUTDIR/vgg16[_bn].pth (state_dict, as torchvision would save it) and
OUTDIR/vgg16[_bn]_golden.safetensors with "input" [2,3,S,S] and "output" [2,1000] (float32
forward in eval mode). torchvision is not needed: the nn.Sequential below reproduces its module
indices, so the state_dict keys are identical. AdaptiveAvgPool2d((7,7)) is kept exactly: with
S=32 the conv stack ends at 1x1 and the adaptive pool replicates it to 7x7, so ember must
implement adaptive average pooling with torchvision's window rule to match.
--hidden narrows the two 4096-wide classifier layers (real VGG16: 4096, 138M parameters,
553 MB); tests use e.g. 256 (21M parameters) to keep files small. Convs are always VGG16's.
"""
import argparse
import math
import os
import sys

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "convert"))
import safetensors_io  # noqa: E402
from torchvision_vgg import VGG16_PLAN  # noqa: E402


class VGG(nn.Module):
    """Same attribute names and Sequential indices as torchvision.models.vgg.VGG."""

    def __init__(self, batch_norm, num_classes=1000, hidden=4096):
        super().__init__()
        layers, in_ch = [], 3
        for item in VGG16_PLAN:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            layers.append(nn.Conv2d(in_ch, item, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(item))
            layers.append(nn.ReLU(inplace=True))
            in_ch = item
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, hidden), nn.ReLU(True), nn.Dropout(),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(),
            nn.Linear(hidden, num_classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def randomize(model, generator):
    """He-normal weights keep activations O(1) through 16 layers, so the golden output has a
    useful magnitude for relative-error checks (torch's default init shrinks it ~1e-6).
    BN gets random affine params and running stats so ember's BN-inference path is exercised."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
                module.bias.uniform_(-0.1, 0.1, generator=generator)
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.uniform_(-0.2, 0.2, generator=generator)
                module.running_mean.uniform_(-0.2, 0.2, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("outdir")
    parser.add_argument("--bn", action="store_true", help="VGG16-BN instead of VGG16")
    parser.add_argument("--size", type=int, default=32, help="input height=width (>= 32)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=4096,
                        help="classifier hidden width (4096 = real VGG16)")
    args = parser.parse_args()
    if args.size < 32:
        parser.error("--size must be >= 32 (five 2x2 max pools)")

    generator = torch.Generator().manual_seed(args.seed)
    model = VGG(batch_norm=args.bn, hidden=args.hidden)
    randomize(model, generator)
    model.eval()
    x = torch.randn(2, 3, args.size, args.size, generator=generator)
    with torch.no_grad():
        y = model(x)

    os.makedirs(args.outdir, exist_ok=True)
    stem = "vgg16_bn" if args.bn else "vgg16"
    pth = os.path.join(args.outdir, stem + ".pth")
    golden = os.path.join(args.outdir, stem + "_golden.safetensors")
    torch.save(model.state_dict(), pth)
    safetensors_io.save(golden, {"input": x.numpy(), "output": y.numpy()},
                        {"architecture": stem, "seed": str(args.seed), "size": str(args.size),
                         "hidden": str(args.hidden), "torch": torch.__version__})
    print(f"{pth}\n{golden}: output {list(y.shape)} mean {y.mean():.4f} std {y.std():.4f} "
          f"argmax {y.argmax(1).tolist()}")


if __name__ == "__main__":
    main()
