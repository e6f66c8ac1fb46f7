#!/usr/bin/env python3
"""Trains Shapes twins with open_clip's own towers in PyTorch, on the project's world.

The recipe is `clipag shapes train`'s (crates/shapes/src/train/), step for step: the same batches
(read from `clipag shapes batches`, which draws them as the trainer does, with the project's
renderer), CLIP's symmetric contrastive loss at temperature 0.07 with every fitting caption
a positive, AdamW (weight decay 0.05, eps 1e-5 as burn's), 200 warm-up steps and cosine decay
to a tenth over pre-training and fine-tuning, and for the robust twin N-FGSM on the pictures
against the captions held fixed (TeCoA). What differs is the image tower: open_clip's
`ModifiedResNet` (CLIP's RN50 family), whose batch norm the project's code does not train,
and PyTorch, which trains convolutions far faster than burn on a CPU (docs/shapes.md has both
rates). The text tower is open_clip's too; it pools at each caption's end token, as the
project's does (the Shapes vocabulary's end token is not its highest id, where open_clip's
`argmax` pooling looks).

A phase writes OUT/NAME/open_clip_model.safetensors and open_clip_config.json, which
`clipag convert OUT/NAME --tokenizer shapes --out MODEL` turns into a model folder.

  python3 tools/shapes_torch.py --clipag BIN --out DIR --phase pretrain
  python3 tools/shapes_torch.py --clipag BIN --out DIR --phase plain --start DIR/pretrain
  python3 tools/shapes_torch.py --clipag BIN --out DIR --phase robust --start DIR/pretrain
      [--epsilon 16] [--noise 4] [--name shapes-rn-robust]

Options say the architecture (--layers 1,1,1,1 --width 16 --head-width 64 --size 96), the
steps (--pretrain-steps 2250 --finetune-steps 900), --batch, --lr, --seed and --device.
A rerun resumes a phase from OUT/NAME/state.pt (written every --checkpoint-every steps).
Needs torch, open_clip_torch and safetensors (a developer tool, never a dependency of the
product).
"""
import argparse
import json
import math
import os
import queue
import subprocess
import sys
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
TEMPERATURE = 0.07
WARMUP = 200
# The Shapes text tower (crates/shapes/src/train/plan.rs `config`): 33 words + start, end, unknown.
TEXT_CFG = dict(context_length=16, vocab_size=36, width=128, heads=4, layers=3)
EMBED_DIM = 64


def model_cfg(args):
    """The architecture in open_clip's `model_cfg` form: a `layers` list picks ModifiedResNet."""
    return dict(
        embed_dim=EMBED_DIM,
        vision_cfg=dict(layers=args.layers, width=args.width, head_width=args.head_width, image_size=args.size),
        text_cfg=dict(TEXT_CFG),
        quick_gelu=False,
    )


def build(args):
    import open_clip

    cfg = model_cfg(args)
    torch.manual_seed(args.seed)
    return open_clip.CLIP(cfg["embed_dim"], cfg["vision_cfg"], cfg["text_cfg"], quick_gelu=False)


class Batches:
    """Steps `first..last` of the run's data, read from `clipag shapes batches` on a thread."""

    def __init__(self, args, first, last):
        command = [args.clipag, "shapes", "batches", "--seed", str(args.seed), "--batch", str(args.batch),
                   "--size", str(args.size), "--from", str(first), "--to", str(last), "--threads", str(args.threads)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE)
        header = json.loads(self.process.stdout.readline())
        assert header["format"] == "clipag-shapes-batches" and header["version"] == 1, header
        b, s, c = header["batch"], header["size"], header["context"]
        self.shape = (b, s, c)
        self.sizes = [b * 3 * s * s, b, 2 * b * c, b * b]
        self.queue = queue.Queue(maxsize=8)
        self.thread = threading.Thread(target=self._read, args=(last - first,), daemon=True)
        self.thread.start()

    def _read(self, count):
        b, s, c = self.shape
        stream = self.process.stdout
        for _ in range(count):
            parts = []
            for size in self.sizes:
                data = stream.read(size)
                if len(data) != size:
                    self.queue.put(RuntimeError("clipag shapes batches ended early"))
                    return
                parts.append(data)
            pixels = np.frombuffer(parts[0], np.uint8).reshape(b, 3, s, s)
            lengths = np.frombuffer(parts[1], np.uint8).astype(np.int64)
            ids = np.frombuffer(parts[2], "<u2").reshape(b, c).astype(np.int64)
            fits = np.frombuffer(parts[3], np.uint8).reshape(b, b).astype(np.float32)
            self.queue.put((torch.from_numpy(pixels.copy()), torch.from_numpy(lengths), torch.from_numpy(ids), torch.from_numpy(fits)))

    def next(self, device):
        item = self.queue.get()
        if isinstance(item, Exception):
            raise item
        pixels, lengths, ids, fits = item
        return (pixels.to(device, non_blocking=True).float() / 255.0, lengths.to(device), ids.to(device), fits.to(device))

    def close(self):
        self.process.kill()
        self.process.wait()


def encode_image(model, pixels):
    mean = torch.tensor(MEAN, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=pixels.device).view(1, 3, 1, 1)
    return model.visual((pixels - mean) / std)


def encode_text(model, ids, lengths):
    """open_clip's text tower, pooled at each caption's end token (position length - 1)."""
    x = model.token_embedding(ids) + model.positional_embedding
    x = model.transformer(x, attn_mask=model.attn_mask)
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), lengths - 1]
    return x @ model.text_projection


def unit(x):
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def soft_cross_entropy(logits, targets):
    return -(F.log_softmax(logits, dim=1) * targets).sum(1).mean()


def contrastive_loss(images, texts, fits):
    logits = unit(images) @ unit(texts).T / TEMPERATURE
    by_image = fits / fits.sum(1, keepdim=True)
    by_text = fits.T / fits.T.sum(1, keepdim=True)
    return (soft_cross_entropy(logits, by_image) + soft_cross_entropy(logits.T, by_text)) / 2


def n_fgsm(model, pixels, texts, fits, epsilon, noise):
    """N-FGSM (de Jorge et al. 2022) against the captions held fixed: from uniform noise of
    `noise` epsilon, one signed step of epsilon up the image-to-caption loss, kept in [0, 1]."""
    targets = fits / fits.sum(1, keepdim=True)
    delta = (torch.rand_like(pixels) * 2 - 1) * (noise * epsilon)
    delta.requires_grad_(True)
    logits = unit(encode_image(model, (pixels + delta).clamp(0, 1))) @ texts.T / TEMPERATURE
    grad, = torch.autograd.grad(soft_cross_entropy(logits, targets), delta)
    return (pixels + delta.detach() + epsilon * grad.sign()).clamp(0, 1)


def learning_rate(args, step):
    total = max(args.pretrain_steps + args.finetune_steps, 1)
    warm = min((step + 1) / WARMUP, 1.0)
    cosine = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / total))
    return args.lr * warm * cosine


def save_model(model, args, folder):
    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, os.path.join(folder, "open_clip_model.safetensors"))
    with open(os.path.join(folder, "open_clip_config.json"), "w") as f:
        json.dump({"model_cfg": model_cfg(args)}, f, indent=1)


def run_phase(args):
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    name = args.name or ("pretrain" if args.phase == "pretrain" else f"shapes-rn-{args.phase}")
    folder = os.path.join(args.out, name)
    state_path = os.path.join(folder, "state.pt")
    model = build(args).to(device)
    if args.phase == "pretrain":
        first, last = 0, args.pretrain_steps
    else:
        first, last = args.pretrain_steps, args.pretrain_steps + args.finetune_steps
        from safetensors.torch import load_file

        model.load_state_dict(load_file(os.path.join(args.start, "open_clip_model.safetensors")))
    # The temperature is fixed, as the project's trainer keeps it: logit_scale is not trained.
    params = [p for n, p in model.named_parameters() if n != "logit_scale"]
    optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-5, weight_decay=0.05)
    step = first
    if os.path.isfile(state_path):
        state = torch.load(state_path, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        print(f"{name}: resuming at step {step}", file=sys.stderr)
    adversarial = args.phase == "robust"
    epsilon = args.epsilon / 255.0
    model.train()
    batches = Batches(args, step, last)
    started, done, recent = time.time(), step, []
    try:
        while step < last:
            pixels, lengths, ids, fits = batches.next(device)
            if adversarial:
                with torch.no_grad():
                    texts = unit(encode_text(model, ids, lengths))
                pixels = n_fgsm(model, pixels, texts, fits, epsilon, args.noise)
            loss = contrastive_loss(encode_image(model, pixels), encode_text(model, ids, lengths), fits)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(args, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            recent.append(loss.detach())
            if step % args.report == 0 or step == last:
                mean = torch.stack(recent).mean().item()
                if not math.isfinite(mean):
                    raise RuntimeError(f"{name}: step {step}: the loss is not finite")
                elapsed = time.time() - started
                print(f"{name}: step {step}/{last} loss {mean:.4f} ({(step - done) / elapsed:.2f} steps/s, {elapsed:.0f} s)",
                      file=sys.stderr, flush=True)
                recent = []
            if args.checkpoint_every and step % args.checkpoint_every == 0 and step < last:
                os.makedirs(folder, exist_ok=True)
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}, state_path)
    finally:
        batches.close()
    model.eval()
    save_model(model, args, folder)
    if os.path.isfile(state_path):
        os.remove(state_path)
    print(f"{name}: wrote {folder}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clipag", required=True, help="the clipag binary that draws the batches")
    parser.add_argument("--out", required=True)
    parser.add_argument("--phase", choices=["pretrain", "plain", "robust"], required=True)
    parser.add_argument("--start", help="the pre-training's folder, for the twins")
    parser.add_argument("--name", help="the folder under OUT (default pretrain, shapes-rn-plain, shapes-rn-robust)")
    parser.add_argument("--layers", type=lambda s: [int(v) for v in s.split(",")], default=[1, 1, 1, 1])
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--head-width", type=int, default=64)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--pretrain-steps", type=int, default=2250)
    parser.add_argument("--finetune-steps", type=int, default=900)
    parser.add_argument("--epsilon", type=float, default=16.0, help="N-FGSM's L-infinity budget in 1/255")
    parser.add_argument("--noise", type=float, default=4.0, help="N-FGSM's random start in epsilon")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=4, help="clipag's drawing threads")
    parser.add_argument("--report", type=int, default=50)
    parser.add_argument("--checkpoint-every", type=int, default=250)
    args = parser.parse_args()
    if args.phase != "pretrain" and not args.start:
        parser.error("the twins start from the pre-training: give --start")
    if len(args.layers) != 4 or args.size % 32:
        parser.error("ModifiedResNet takes four stage depths and an image size divisible by 32")
    run_phase(args)


if __name__ == "__main__":
    main()
