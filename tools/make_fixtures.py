"""Makes the open_clip reference fixtures the tests read (tests/fixtures/).

What a correct CLIP computes, said by code nobody on this project wrote: open_clip's own
`CLIP` class (a ViT image tower, or `ModifiedResNet` when `layers` is a list) with every
weight perturbed, the tensors it computes on three pictures and nine prompts, and the ids
its tokenizer gives a set of awkward strings. The layout is ../shared/fixtures/README.md's,
so the shared copies, where they are beside the checkout, are a cross-check of these
(tests/clip_parity.rs, tests/tokenizer.rs).

    V=$(tools/torch-env.sh)                 # a CPU venv with torch and open_clip 3.3.0
    $V tools/make_fixtures.py tests/fixtures/tiny-clip --seed 7 --tower vit
    $V tools/make_fixtures.py tests/fixtures/tiny-rn --seed 11 --tower rn
    $V tools/make_fixtures.py tests/fixtures --tokenizer-cases 600 --seed 5

Smaller than the shared fixtures, to keep the repository small: the text tower is 16 wide,
not 64 (its token embedding of 49408 rows is most of a fixture's bytes). The image towers
are the shared ones'. What the tests measure on them (`cargo test --release --test
clip_parity -- --nocapture`): f32 at cosine 1.0 everywhere; q8's gradient cosine 0.9997
(ViT) and 0.982 (ModifiedResNet; the tests ask 0.98: q8 on random weights sits near it,
0.967 with a ModifiedResNet 8 wide, 0.978 with each weight moved by half its tensor's
spread instead of a fifth; the shared copy's 0.990); q4's text cosine 0.954 (0.76 with a
text tower 8 wide, under the 0.9 the tests ask).
"""

import argparse
import json
import random
from pathlib import Path

import numpy as np
import open_clip
import torch
from PIL import Image
from safetensors.torch import save_file

PROMPTS = [
    "a photo of a cat",
    "A RED circle on a blue background!",
    "",
    "naïve café — déjà vu",
    "emoji 🐱🚀 and &amp; html",
    "it's the dog's toy, isn't it? they've we'll I'd",
    "numbers 3.14159 and 2024-11-27",
    "   lots   of\twhite\nspace   ",
    " ".join(["long"] * 100),
]
MEAN = open_clip.OPENAI_DATASET_MEAN
STD = open_clip.OPENAI_DATASET_STD
IMAGE = 64


def config(tower, text_width):
    text = {"context_length": 77, "vocab_size": 49408, "width": text_width, "heads": 2, "layers": 2}
    if tower == "vit":
        vision = {"image_size": IMAGE, "layers": 2, "width": 128, "patch_size": 16}
    else:
        # open_clip gives the attention pool width * 32 // head_width = 32 heads of 16.
        vision = {"image_size": IMAGE, "layers": [1, 2, 1, 1], "width": 16, "head_width": 16}
    return {"embed_dim": 32, "vision_cfg": vision, "text_cfg": text, "quick_gelu": False}


def perturbed(cfg, seed):
    """open_clip's model with every parameter moved off its initial value (no weight is
    trivially zero or one) and batch norm's running statistics made non-trivial."""
    torch.manual_seed(seed)
    model = open_clip.CLIP(**cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = p.std().item() if p.numel() > 1 and p.std().item() > 0 else 0.02
            p.add_(torch.randn_like(p) * 0.2 * scale + 0.01 * torch.randn_like(p))
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn_like(module.running_mean) * 0.1)
                module.running_var.copy_(1 + torch.rand_like(module.running_var))
    return model.eval()


def images(seed):
    """Two smooth patterns and one of uniform noise, each pixel a multiple of 1/255 so the
    PNGs hold exactly the same values."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, IMAGE), torch.linspace(0, 1, IMAGE), indexing="ij")
    smooth = torch.stack([x, y, 0.5 + 0.5 * torch.sin(6.28 * (x + y))])
    rings = torch.stack([0.5 + 0.5 * torch.cos(20 * ((x - 0.5) ** 2 + (y - 0.4) ** 2)), 1 - x * y, (x - y).abs()])
    noise = torch.rand(3, IMAGE, IMAGE, generator=g)
    return (torch.stack([smooth, rings, noise]).clamp(0, 1) * 255).round() / 255


def reference(model, pixels):
    tokens = open_clip.tokenize(PROMPTS)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        text = model.encode_text(tokens)
        image = model.encode_image((pixels - mean) / std)
    x = pixels.clone().requires_grad_(True)
    encoded = model.encode_image((x - mean) / std)
    objective = torch.nn.functional.cosine_similarity(encoded, text[: len(pixels)], dim=-1).sum()
    objective.backward()
    return {
        "images": pixels.contiguous(),
        "token_ids": tokens.to(torch.int64).contiguous(),
        "text_embeddings": text.contiguous(),
        "image_embeddings": image.contiguous(),
        "pixel_grad": x.grad.contiguous(),
    }


def model_fixture(out, tower, seed, text_width):
    out.mkdir(parents=True, exist_ok=True)
    cfg = config(tower, text_width)
    model = perturbed(cfg, seed)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    (out / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg}, indent=1))
    save_file(state, out / "open_clip_model.safetensors")
    # The CLIPAG checkpoint's layout: a zip pickle with numpy scalars and `module.` keys.
    checkpoint = {
        "epoch": np.int64(10),
        "name": "tiny",
        "best_loss": np.float64(0.25),
        "state_dict": {"module." + k: v for k, v in state.items()},
    }
    torch.save(checkpoint, out / "checkpoint.pt")
    tensors = reference(model, images(seed))
    save_file(tensors, out / "reference.safetensors")
    names = []
    for i, picture in enumerate(tensors["images"]):
        name = f"image{i}.png"
        array = (picture.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(array).save(out / name)
        names.append(name)
    (out / "reference.json").write_text(json.dumps({
        "prompts": PROMPTS,
        "mean": list(MEAN),
        "std": list(STD),
        "images_png": names,
        "objective": "sum over i<3 of cosine(encode_image((images[i]-mean)/std), encode_text(token_ids[i])); "
                     "pixel_grad is its gradient w.r.t. images",
        "made_with": f"open_clip {open_clip.__version__}, torch {torch.__version__}, tools/make_fixtures.py --seed {seed} --tower {tower}",
    }, indent=1, ensure_ascii=False))


WORDS = ["photo", "cat", "dog", "red", "circle", "Background", "OpenAI", "CLIP", "the", "a",
         "robust", "gradient", "picture", "Tokyo", "naïve", "über", "façade", "jalapeño"]
PIECES = ["&amp;", "&lt;b&gt;", "&#39;", "&quot;", "…", "—", "’", "“quoted”", "Ελληνικά", "русский",
          "日本語のテキスト", "中文", "한국어", "العربية", "हिन्दी", "🐱", "🚀", "👩‍💻", "🇫🇷", "é", "ﬁ",
          "3.14159", "2024-11-27", "$100", "50%", "#hash", "@user", "x²", "e\u0301", "\u00a0", "\u200b",
          "\t", "\n", "  ", "!!", "?!", "...", "(", ")", "'s", "'ll", "n't", "ÀÉÎÕÜ", "ß"]


def case_string(rng, words):
    parts = []
    for _ in range(rng.randint(1, 12)):
        r = rng.random()
        word = rng.choice(words) if r < 0.6 else rng.choice(PIECES)
        if r < 0.2:
            word = word.upper() if rng.random() < 0.5 else word.capitalize()
        parts.append(word)
    text = "".join(p + rng.choice([" ", " ", " ", "", "  ", ",", "\t"]) for p in parts)
    if rng.random() < 0.03:
        text = " ".join([text] * 20)  # past 76 tokens: cut, end token kept
    return text


def tokenizer_cases(out, count, seed):
    """Strings mixing vocabulary words, case, punctuation, numbers, HTML entities, accents,
    several scripts, emoji and odd white space, with the ids open_clip's tokenizer gives them
    (start and end included, padding removed, cut so the end token is the 77th id)."""
    rng = random.Random(seed)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    vocab = [w.replace("</w>", "") for w in tokenizer.encoder if w.endswith("</w>") and w[:-4].isalpha()]
    words = WORDS + rng.sample(vocab, 400)
    strings = [""] + PROMPTS + [case_string(rng, words) for _ in range(count)]
    ids = tokenizer(strings)
    cases = [{"text": s, "ids": [int(t) for t in row if t != 0]} for s, row in zip(strings, ids.tolist())]
    (out / "tokenizer-cases.json").write_text(json.dumps({
        "made_with": f"open_clip {open_clip.__version__} ViT-B-32 tokenizer, tools/make_fixtures.py --seed {seed}",
        "cases": cases,
    }, ensure_ascii=False))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--tower", choices=["vit", "rn"])
    parser.add_argument("--text-width", type=int, default=16)
    parser.add_argument("--tokenizer-cases", type=int, default=0, help="write OUT/tokenizer-cases.json with this many generated strings")
    args = parser.parse_args()
    if args.tower:
        model_fixture(args.out, args.tower, args.seed, args.text_width)
    if args.tokenizer_cases:
        args.out.mkdir(parents=True, exist_ok=True)
        tokenizer_cases(args.out, args.tokenizer_cases, args.seed)


if __name__ == "__main__":
    main()
