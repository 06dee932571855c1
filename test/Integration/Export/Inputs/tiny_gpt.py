"""A plain hand-written GPT (no transformers) for mod-export --module: learned
token and position embeddings, pre-norm blocks of causal self-attention
(by position: query i sees key j iff positions[j] <= positions[i]) and a GELU
MLP, final LayerNorm, untied output projection."""
import math

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x, positions):
        b, s, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (t.view(b, s, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        visible = positions[:, None, None, :] <= positions[:, None, :, None]
        scores = scores.masked_fill(~visible, -1e30)
        a = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, d)
        x = x + self.proj(a)
        return x + self.out(nn.functional.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class TinyGPT(nn.Module):
    def __init__(self, vocab=96, d=32, heads=4, layers=2, max_positions=32):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(max_positions, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab, bias=False)

    def forward(self, tokens, positions):
        x = self.tok(tokens) + self.pos(positions)
        for block in self.blocks:
            x = block(x, positions)
        return self.head(self.ln(x))


def make():
    return TinyGPT()
