"""PyTorch train-step timing for bench/train-vs-pytorch.sh.

The same GPT-2 as `mod-import` builds from a Hugging Face config (pre-norm
blocks, fused c_attn, causal attention, tanh GELU, tied embeddings), dense or
with Mixture-of-Depths routing as ARCHITECTURE.md section 2 specifies
(router w·x, per-sequence top-k in ascending order, the block on the gathered
tokens with attention causal by position, output scaled by the router logit
and added back; every other block, blocks 1, 3, ...). One step: forward,
mean next-token cross-entropy, backward, global-norm clipping, AdamW.

    python torch_train_step.py CONFIG --batch=B --seq=S --threads=T
        [--capacity=0.125] [--steps=N] [--warmup=W]

Prints the median step time in seconds as `median_step_s <t>`.
"""

import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F


class Block(torch.nn.Module):
    def __init__(self, d, heads, inner, eps):
        super().__init__()
        self.heads = heads
        self.ln_1 = torch.nn.LayerNorm(d, eps=eps)
        self.c_attn = torch.nn.Linear(d, 3 * d)
        self.attn_proj = torch.nn.Linear(d, d)
        self.ln_2 = torch.nn.LayerNorm(d, eps=eps)
        self.c_fc = torch.nn.Linear(d, inner)
        self.mlp_proj = torch.nn.Linear(inner, d)

    def contribution(self, x, pos):
        """f = attn + mlp for a pre-norm block; attention causal by position."""
        b, s, d = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        shape = (b, s, self.heads, d // self.heads)
        q, k, v = (t.view(shape).transpose(1, 2) for t in (q, k, v))
        mask = pos[:, None, :, None] >= pos[:, None, None, :]
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        a = self.attn_proj(a.transpose(1, 2).reshape(b, s, d))
        h = x + a
        m = self.mlp_proj(F.gelu(self.c_fc(self.ln_2(h)), approximate="tanh"))
        return a + m


class GPT2(torch.nn.Module):
    def __init__(self, cfg, seq, capacity):
        super().__init__()
        d, layers = cfg["n_embd"], cfg["n_layer"]
        inner = cfg.get("n_inner") or 4 * d
        self.wte = torch.nn.Embedding(cfg["vocab_size"], d)
        self.wpe = torch.nn.Embedding(cfg["n_positions"], d)
        self.blocks = torch.nn.ModuleList(
            Block(d, cfg["n_head"], inner, cfg["layer_norm_epsilon"])
            for _ in range(layers))
        self.ln_f = torch.nn.LayerNorm(d, eps=cfg["layer_norm_epsilon"])
        self.k = None
        if capacity is not None:
            self.k = min(seq, max(1, int(math.floor(capacity * seq + 0.5))))
            self.routers = torch.nn.ParameterDict({
                str(i): torch.nn.Parameter(torch.randn(d) * 0.02)
                for i in range(1, layers, 2)})

    def forward(self, tokens, pos):
        h = self.wte(tokens) + self.wpe(pos)
        for i, block in enumerate(self.blocks):
            if self.k is None or str(i) not in self.routers:
                h = h + block.contribution(h, pos)
                continue
            r = h @ self.routers[str(i)]                      # [B,S]
            idx = r.topk(self.k, dim=1).indices.sort(dim=1).values
            d = h.shape[2]
            xk = h.gather(1, idx[:, :, None].expand(-1, -1, d))
            pk = pos.gather(1, idx)
            out = block.contribution(xk, pk) * r.gather(1, idx)[:, :, None]
            h = h.scatter_add(1, idx[:, :, None].expand(-1, -1, d), out)
        return self.ln_f(h) @ self.wte.weight.t()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("config")
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--seq", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--capacity", type=float, default=None)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = json.load(open(a.config))
    model = GPT2(cfg, a.seq, a.capacity)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95),
                            eps=1e-8, weight_decay=0.1)
    vocab = cfg["vocab_size"]
    pos = torch.arange(a.seq).expand(a.batch, a.seq)
    times = []
    for step in range(a.warmup + a.steps):
        data = torch.randint(0, vocab, (a.batch, a.seq + 1))
        t0 = time.perf_counter()
        logits = model(data[:, :-1], pos)
        loss = F.cross_entropy(logits.reshape(-1, vocab), data[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
    print(f"median_step_s {statistics.median(times):.6g}")


if __name__ == "__main__":
    main()
