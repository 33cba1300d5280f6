#!/usr/bin/env python3
"""PyTorch + PEFT reference for `dora bench --model minilm` (issue 15): the same training steps in PyTorch.

The model is all-MiniLM-L6-v2's architecture laid out as Hugging Face's BertModel (embeddings + LayerNorm +
dropout 0.1; 6 layers of 12-head self-attention through torch's scaled_dot_product_attention with dropout 0.1 in
training, as transformers' BertSdpaSelfAttention calls it; hidden 384, intermediate 1536, exact GELU, LayerNorm eps
1e-12; the pooler is computed, as BertModel does, but unused), mean pooling over real tokens and a Linear(384, 4)
head, cross-entropy, AdamW (lr 1e-4 for the encoder's trainable parameters, 1e-3 for the head). Variants and batch
are those of src/DoraSharp.Cli/Bench/MiniLmWorkload.cs:
  frozen  the encoder frozen, the head trained
  lora    LoRA r = 8, alpha = 16 on query and value (B ~ N(0, 0.01) after PEFT's init, so B != 0)
  dora    the same with DoRA (magnitude initialised by PEFT's rule while B = 0, then B ~ N(0, 0.01))
  full    every encoder parameter but the pooler trained
The batch: ids uniform in [1000, 30000) from a generator seeded 7, every 4th row padded (id 0, mask 0) after half its
tokens, token types 0, labels uniform in [0, 4) from the same generator.

The weights are RANDOM (normal, std 0.02, as transformers' BertPreTrainedModel._init_weights; the head and LoRA A
use PyTorch's default init), not the pretrained ones DoraSharp loads: the cost of a step does not depend on the
values, and this script needs no download.

PEFT is not installed here (it is not on Debian's mirror); LoraLinear below is PEFT's lora.Linear for one adapter,
computing what huggingface/peft's src/peft/tuners/lora/layer.py (Linear.forward), variants.py
(DoraLinearVariant.forward) and dora.py (DoraLinearLayer.update_layer / forward / get_weight_norm /
get_lora_weight) compute (read at peft commit 5d602fd), term for term, in training mode with lora_dropout = 0
(Identity) and DoRA caching off (PEFT's default).

Run with Debian's interpreter (/usr/bin/python3 with python3-torch); scripts/bench-vs-pytorch.sh sets it up and runs
it interleaved with `dora bench --model minilm`.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

HIDDEN, HEADS, INTERMEDIATE, LAYERS, VOCAB, POSITIONS, TYPES = 384, 12, 1536, 6, 30522, 512, 2
CLASSES, RANK, ALPHA = 4, 8, 16
VARIANTS = ("frozen", "lora", "dora", "full")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads and OpenBLAS threads (default 1)")
    p.add_argument("--shapes", default="16x48,32x128", help="comma-separated BATCHxTOKENS (default 16x48,32x128)")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of " + ",".join(VARIANTS))
    p.add_argument("--steps", type=int, default=5, help="timed steps per variant (default 5, as dora bench)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1, as dora bench)")
    p.add_argument("--json", action="store_true", help="print one JSON array of records instead of a table")
    p.add_argument("--check-blas", action="store_true",
                   help="only say which BLAS torch runs on and its sgemm rate; exit 3 if it looks like netlib's reference BLAS")
    p.add_argument("--check-layer", action="store_true",
                   help="only check LoraLinear against DoRA's closed form (outputs and gradients); exit 1 if they differ")
    a = p.parse_args(argv)
    if a.threads < 1 or a.steps < 1 or a.warmup < 0:
        p.error("--threads and --steps must be >= 1, --warmup >= 0")
    try:
        a.shapes = [tuple(int(n) for n in s.split("x")) for s in a.shapes.split(",") if s]
        assert a.shapes and all(len(s) == 2 and s[0] >= 1 and 2 <= s[1] <= POSITIONS for s in a.shapes)
    except (ValueError, AssertionError):
        p.error(f"--shapes: expected BATCHxTOKENS,... with batch >= 1 and tokens 2 to {POSITIONS} (e.g. 16x48)")
    a.variants = [v for v in a.variants.split(",") if v]
    unknown = [v for v in a.variants if v not in VARIANTS]
    if unknown or not a.variants:
        p.error(f"--variants: {','.join(unknown) or 'none given'}; allowed: {','.join(VARIANTS)}")
    return a


ARGS = parse_args(sys.argv[1:])
# OpenBLAS reads its thread count when it is loaded, i.e. when torch is imported: set it first, and torch's own
# (OpenMP) intra-op threads to the same number below.
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(ARGS.threads)


class DoraMagnitude(nn.Module):
    """PEFT's DoraLinearLayer (dora.py): holds the magnitude m as `weight` and computes DoRA's extra output."""

    def __init__(self, base, lora_A, lora_B, scaling):
        super().__init__()
        # DoraLinearLayer.update_layer: m = ||W + s * (B @ A)|| per output row, taken at creation (PEFT's B = 0).
        with torch.no_grad():
            delta = lora_B.weight @ lora_A.weight
            self.weight = nn.Parameter(self.weight_norm(base.weight, delta, scaling))

    @staticmethod
    def weight_norm(weight, lora_weight, scaling):
        # DoraLinearLayer.get_weight_norm (fan_in_fan_out False): row norms of W + s * delta, in W's dtype.
        return torch.linalg.norm(weight + scaling * lora_weight, dim=1).to(weight.dtype)

    def forward(self, x, lora_A, lora_B, scaling, base_layer, base_result):
        # DoraLinearLayer.get_lora_weight: B @ A formed through the modules' forward on an identity (PEFT does it
        # this way for FSDP), so autograd records it even though only its detached value is used below.
        eye = torch.eye(lora_A.weight.shape[1], device=lora_A.weight.device, dtype=lora_A.weight.dtype)
        lora_weight = lora_B(lora_A(eye)).T.to(x.dtype)
        weight = base_layer.weight.to(x.dtype)
        # DoRA paper section 4.3, as PEFT: the norm ||V + dV|| is a constant for backpropagation.
        norm = self.weight_norm(weight, lora_weight.detach(), scaling).detach()
        mag_norm_scale = (self.weight / norm).view(1, -1)
        lora_result = lora_B(lora_A(x))
        if base_layer.bias is not None:
            base_result = base_result - base_layer.bias   # the bias is not scaled by m / ||.||
        return (mag_norm_scale - 1) * base_result + mag_norm_scale * lora_result * scaling


class LoraLinear(nn.Module):
    """PEFT's lora.Linear around a frozen nn.Linear, one adapter, LoRA or DoRA (use_dora)."""

    def __init__(self, base, r, alpha, use_dora):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        self.lora_dropout = nn.Identity()             # LoraConfig.lora_dropout = 0.0
        self.scaling = alpha / r                      # not rsLoRA
        # LoraLayer.reset_lora_parameters(init_lora_weights=True): A as nn.Linear's default, B = 0.
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        # DoraLinearVariant.init, right after (so with B = 0).
        self.lora_magnitude_vector = DoraMagnitude(base, self.lora_A, self.lora_B, self.scaling) if use_dora else None

    def forward(self, x):
        # lora.Linear.forward: the base layer's output, then the adapter's contribution added to it.
        result = self.base_layer(x)
        if self.lora_magnitude_vector is None:
            return result + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling
        # DoraLinearVariant.forward: with Identity dropout the base result is passed on (not recomputed).
        return result + self.lora_magnitude_vector(x, self.lora_A, self.lora_B, self.scaling, self.base_layer, result)


class SelfAttention(nn.Module):
    """transformers' BertSdpaSelfAttention: query/key/value, fused SDPA with the additive padding mask."""

    def __init__(self):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN)
        self.dropout_prob = 0.1

    def forward(self, hidden, mask):
        b, t, _ = hidden.shape

        def heads(y):                                 # (B, T, C) -> (B, H, T, D)
            return y.view(b, t, HEADS, HIDDEN // HEADS).transpose(1, 2)

        context = F.scaled_dot_product_attention(heads(self.query(hidden)), heads(self.key(hidden)), heads(self.value(hidden)),
                                                 attn_mask=mask, dropout_p=self.dropout_prob if self.training else 0.0)
        return context.transpose(1, 2).reshape(b, t, HIDDEN)


class Layer(nn.Module):
    """BertLayer: attention, BertSelfOutput (dense, dropout, residual LayerNorm), BertIntermediate (dense, GELU),
    BertOutput (dense, dropout, residual LayerNorm)."""

    def __init__(self):
        super().__init__()
        self.attention = SelfAttention()
        self.attention_dense, self.attention_norm = nn.Linear(HIDDEN, HIDDEN), nn.LayerNorm(HIDDEN, eps=1e-12)
        self.intermediate = nn.Linear(HIDDEN, INTERMEDIATE)
        self.output_dense, self.output_norm = nn.Linear(INTERMEDIATE, HIDDEN), nn.LayerNorm(HIDDEN, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, hidden, mask):
        attended = self.attention_norm(self.dropout(self.attention_dense(self.attention(hidden, mask))) + hidden)
        return self.output_norm(self.dropout(self.output_dense(F.gelu(self.intermediate(attended)))) + attended)


class Encoder(nn.Module):
    """BertModel: embeddings (word, position, token type; LayerNorm; dropout), the layers, the pooler."""

    def __init__(self):
        super().__init__()
        self.word = nn.Embedding(VOCAB, HIDDEN, padding_idx=0)
        self.position, self.token_type = nn.Embedding(POSITIONS, HIDDEN), nn.Embedding(TYPES, HIDDEN)
        self.norm, self.dropout = nn.LayerNorm(HIDDEN, eps=1e-12), nn.Dropout(0.1)
        self.layer = nn.ModuleList(Layer() for _ in range(LAYERS))
        self.pooler = nn.Linear(HIDDEN, HIDDEN)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        # transformers' BertPreTrainedModel._init_weights (initializer_range 0.02).
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            nn.init.zeros_(m.weight[m.padding_idx])
        if isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, ids, mask, types):
        b, t = ids.shape
        positions = torch.arange(t).unsqueeze(0)
        hidden = self.dropout(self.norm(self.word(ids) + self.token_type(types) + self.position(positions)))
        # _prepare_4d_attention_mask_for_sdpa: (B, 1, T, T) additive mask, dtype's minimum where padded.
        additive = (1.0 - mask[:, None, None, :].to(hidden.dtype)).expand(b, 1, t, t) * torch.finfo(hidden.dtype).min
        for layer in self.layer:
            hidden = layer(hidden, additive)
        pooled = torch.tanh(self.pooler(hidden[:, 0]))  # BertPooler: computed by BertModel, unused here
        return hidden, pooled


class Classifier(nn.Module):
    """SentenceClassifier: logits = head(mean of the last hidden states over real tokens)."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(HIDDEN, CLASSES)

    def forward(self, ids, mask, types):
        hidden, _ = self.encoder(ids, mask, types)
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return self.head((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9))


def build(variant):
    """Model and optimisers of one variant, as MiniLmWorkload.Create builds them."""
    torch.manual_seed(0)
    encoder = Encoder()
    torch.manual_seed(42)
    model = Classifier(encoder)
    for p in encoder.parameters():
        p.requires_grad = False
    if variant in ("lora", "dora"):
        for layer in encoder.layer:
            att = layer.attention
            att.query = LoraLinear(att.query, RANK, ALPHA, variant == "dora")
            att.value = LoraLinear(att.value, RANK, ALPHA, variant == "dora")
        with torch.no_grad():                         # trained adapters have B != 0
            for layer in encoder.layer:
                for lora in (layer.attention.query, layer.attention.value):
                    lora.lora_B.weight.normal_(0, 0.01)
    elif variant == "full":
        for name, p in encoder.named_parameters():
            p.requires_grad = not name.startswith("pooler.")
    optimizers = [torch.optim.AdamW(model.head.parameters(), lr=1e-3)]
    trainable = [p for p in encoder.parameters() if p.requires_grad]
    if trainable:
        optimizers.append(torch.optim.AdamW(trainable, lr=1e-4))
    return model, optimizers


def batch(b, t):
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(1000, 30000, (b, t), generator=g)
    mask = torch.ones(b, t, dtype=torch.long)
    mask[0::4, t // 2:] = 0
    ids.masked_fill_(mask == 0, 0)                    # [PAD] is id 0
    return ids, mask, torch.zeros_like(ids), torch.randint(0, CLASSES, (b,), generator=g)


def train_step(model, optimizers, data):
    ids, mask, types, labels = data
    for o in optimizers:
        o.zero_grad()
    F.cross_entropy(model(ids, mask, types), labels).backward()
    for o in optimizers:
        o.step()


def measure(b, t, variants, warmup, steps):
    """Median and minimum ms per training step of each variant, variants interleaved round by round."""
    data = batch(b, t)
    runs = {v: build(v) for v in variants}
    for model, _ in runs.values():
        model.train()
    times = {v: [] for v in variants}
    for round_ in range(-warmup, steps):
        for v, (model, optimizers) in runs.items():
            start = time.perf_counter()
            train_step(model, optimizers, data)
            if round_ >= 0:
                times[v].append((time.perf_counter() - start) * 1000)
    return {v: (statistics.median(ts), min(ts)) for v, ts in times.items()}


def check_blas():
    """Which BLAS library torch loaded and a 512^3 sgemm rate; netlib's reference BLAS is ~20x slower than OpenBLAS."""
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    for _ in range(3):
        a @ b
    n = 20
    start = time.perf_counter()
    for _ in range(n):
        a @ b
    gflops = 2 * 512 ** 3 * n / (time.perf_counter() - start) / 1e9
    with open("/proc/self/maps") as maps:
        libs = sorted({line.split()[-1] for line in maps if "blas" in line.rsplit("/", 1)[-1]})
    reference = any("/blas/" in path for path in libs) or gflops < 10
    print(f"torch {torch.__version__}: BLAS {', '.join(libs) or 'none mapped'}; sgemm {gflops:.1f} GFLOP/s "
          f"(512^3, {ARGS.threads} thread{'s' if ARGS.threads > 1 else ''})"
          + ("; looks like netlib's reference BLAS: install libopenblas0-pthread" if reference else ""))
    return 3 if reference else 0


def check_layer():
    """LoraLinear (PEFT's way: base output rescaled, bias taken out) against DoRA's definition written directly,
    m * (W + s*B*A) / ||W + s*B*A|| applied to x, plus the bias, with the norm detached (paper section 4.3)."""
    torch.manual_seed(3)
    base = nn.Linear(24, 20).requires_grad_(False)
    layer = LoraLinear(base, 4, 8, use_dora=True)
    with torch.no_grad():
        layer.lora_B.weight.normal_(0, 0.1)
        layer.lora_magnitude_vector.weight.mul_(torch.rand(20) + 0.5)
    x = torch.randn(3, 5, 24)
    params = [layer.lora_A.weight, layer.lora_B.weight, layer.lora_magnitude_vector.weight]
    ours = layer(x)
    ours_grads = torch.autograd.grad(ours.square().sum(), params)
    v = base.weight + layer.scaling * layer.lora_B.weight @ layer.lora_A.weight
    direct = F.linear(x, (layer.lora_magnitude_vector.weight / v.norm(dim=1).detach())[:, None] * v, base.bias)
    direct_grads = torch.autograd.grad(direct.square().sum(), params)
    diffs = [(ours - direct).abs().max().item()] + [(a - b).abs().max().item() for a, b in zip(ours_grads, direct_grads)]
    ok = max(diffs) < 1e-4
    print(f"LoraLinear (DoRA) against the closed form: max |difference| output {diffs[0]:.1e}, gradients A/B/m "
          + " / ".join(f"{d:.1e}" for d in diffs[1:]) + (" (ok)" if ok else " - MISMATCH"))
    return 0 if ok else 1


def main():
    if ARGS.check_blas:
        return check_blas()
    if ARGS.check_layer:
        return check_layer()
    records = []
    for b, t in ARGS.shapes:
        for v, (median, minimum) in measure(b, t, ARGS.variants, ARGS.warmup, ARGS.steps).items():
            records.append({"shape": f"minilm-b{b}x{t}", "variant": v, "phase": "train", "median_ms": round(median, 3),
                            "min_ms": round(minimum, 3), "steps": ARGS.steps, "threads": ARGS.threads,
                            "engine": "pytorch", "torch": torch.__version__})
    if ARGS.json:
        print(json.dumps(records, indent=2))
    else:
        print(f"PyTorch {torch.__version__} + PEFT's LoRA/DoRA math, {ARGS.threads} thread(s), medians of {ARGS.steps} "
              f"steps after {ARGS.warmup} warm-up, variants interleaved")
        for r in records:
            print(f"{r['shape']:16} {r['variant']:7} {r['median_ms']:9.1f} ms (min {r['min_ms']:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
