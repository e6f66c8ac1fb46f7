#!/usr/bin/env python3
"""The PyTorch reference for `clipag bench`: the same CLIPAG step at the same sizes.

For comparison only (never a dependency of the product). One step, as src/generate does it:
views of a canvas (global views with noise, patch crops, DiffAugment colour, translation,
zoom and cutout, all resampled with grid_sample), a ViT image tower with random weights
(open_clip's ViT-B/32 or the Shapes model's size), 1 - cosine to a fixed text embedding
(global mean + 5 x patch mean), the gradient with respect to the canvas only (weights
frozen), gradient-norm clipping, AdamW, dynamic thresholding, and one scalar read back, as an
interactive loop does. Prints one JSON line per view count, like `clipag bench`.

usage: python3 tools/bench_pytorch.py [--arch vit-b-32|shapes] [--views 8,64]
       [--precision fp32|tf32|fp16] [--warmup 3] [--steps 10]
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

ARCHS = {
    # image size, patch, width, layers, heads, mlp, embed
    "vit-b-32": (224, 32, 768, 12, 12, 3072, 512),
    "shapes": (64, 8, 128, 4, 4, 512, 64),
}
MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


class Block(torch.nn.Module):
    def __init__(self, width, heads, mlp):
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(width)
        self.attn = torch.nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = torch.nn.LayerNorm(width)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(width, mlp), torch.nn.GELU(), torch.nn.Linear(mlp, width))

    def forward(self, x):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Vision(torch.nn.Module):
    """open_clip's VisionTransformer."""

    def __init__(self, size, patch, width, layers, heads, mlp, embed):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, width, patch, patch, bias=False)
        self.class_embedding = torch.nn.Parameter(torch.randn(width) * width ** -0.5)
        self.positional_embedding = torch.nn.Parameter(torch.randn((size // patch) ** 2 + 1, width) * width ** -0.5)
        self.ln_pre = torch.nn.LayerNorm(width)
        self.blocks = torch.nn.ModuleList(Block(width, heads, mlp) for _ in range(layers))
        self.ln_post = torch.nn.LayerNorm(width)
        self.proj = torch.nn.Parameter(torch.randn(width, embed) * width ** -0.5)

    def forward(self, pixels):
        x = self.conv1((pixels - MEAN.to(pixels)) / STD.to(pixels)).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_embedding.expand(x.shape[0], 1, -1), x], 1) + self.positional_embedding
        x = self.ln_pre(x)
        for block in self.blocks:
            x = block(x)
        return self.ln_post(x[:, 0]) @ self.proj


def identity_grid(size, device):
    c = (torch.arange(size, device=device, dtype=torch.float32) * 2 + 1) / size - 1
    y, x = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([x, y], -1).unsqueeze(0)


def views(canvas, n_global, n_patch, size, base):
    n = n_global + n_patch
    dev = canvas.device
    half = torch.ones(n, 1, 1, 1, device=dev)
    center = torch.zeros(n, 1, 1, 2, device=dev)
    frac = 128 / 224
    half[n_global:] = frac
    center[n_global:] = (torch.rand(n_patch, 1, 1, 2, device=dev) * 2 - 1) * (1 - frac)
    x = F.grid_sample(canvas.expand(n, -1, -1, -1), base * half + center, align_corners=False)
    noise = torch.zeros_like(x)
    noise[:n_global] = torch.randn_like(x[:n_global]) * 0.01
    x = x + noise
    x = x + (torch.rand(n, 1, 1, 1, device=dev) - 0.5)
    m = x.mean(1, keepdim=True)
    x = (x - m) * (torch.rand(n, 1, 1, 1, device=dev) * 2) + m
    m = x.mean([1, 2, 3], keepdim=True)
    x = (x - m) * (torch.rand(n, 1, 1, 1, device=dev) + 0.5) + m
    shift = torch.randint(-int(size * 0.125 + 0.5), int(size * 0.125 + 0.5) + 1, (n, 1, 1, 2), device=dev).float()
    zoom = 0.8 + 0.4 * torch.rand((), device=dev)
    x = F.grid_sample(x, base / zoom - 2 * shift / size, align_corners=False)
    cut = torch.rand(n, 2, 1, 1, device=dev) * 2 - 1
    inside = ((base.permute(0, 3, 1, 2) - cut).abs() < 0.5).all(1, keepdim=True)
    return x.masked_fill(inside, 0.0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="vit-b-32", choices=ARCHS)
    parser.add_argument("--views", default="8,64")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "fp16"])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = args.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = args.precision == "tf32"
    torch.manual_seed(1)
    size, *rest = ARCHS[args.arch]
    model = Vision(size, *rest).to(device).requires_grad_(False).eval()
    text = F.normalize(torch.randn(1, rest[-1], device=device), dim=-1)
    base = identity_grid(size, device)
    for count in [int(v) for v in args.views.split(",")]:
        n_global, n_patch = count // 2, count - count // 2
        canvas = torch.rand(1, 3, size, size, device=device, requires_grad=True)
        optim = torch.optim.AdamW([canvas], lr=0.0175, weight_decay=0.01)
        times = []
        for i in range(args.warmup + args.steps):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            with torch.autocast(device, dtype=torch.float16, enabled=args.precision == "fp16"):
                emb = model(views(canvas, n_global, n_patch, size, base))
            loss_views = 1 - F.cosine_similarity(emb.float(), text)
            loss = loss_views[:n_global].mean() + 5.0 * loss_views[n_global:].mean()
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([canvas], 0.001)
            optim.step()
            with torch.no_grad():
                x = canvas * 2 - 1
                s = torch.quantile(x.abs().flatten(), 0.95).clamp(min=1)
                canvas.copy_(((x.clamp(-s, s) / s) + 1) / 2)
            loss.item()  # the one read back an interactive loop does
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
        step = sorted(times)[len(times) // 2]
        print(json.dumps({
            "arch": args.arch, "engine": f"pytorch {torch.__version__} {args.precision}", "device": device,
            "views": count, "seconds_per_step": step, "steps_per_second": 1 / step, "views_per_second": count / step,
        }))


if __name__ == "__main__":
    main()
