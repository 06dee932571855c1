"""End-to-end check of tools/mod-export on tiny Hugging Face models (run with
the export virtual environment's python; mod-opt, mod-compile and mod-run on
PATH):

    export-check.py WORK_DIR CASE [--mod=CAPACITY]

CASE is gpt2, gpt2-hd-eq-s, llama or llama-hd-eq-s: a transformers 5 model
built from a config with random weights (seeded), B = 2 (or
$EXPORT_CHECK_BATCH), S = 8 (head_dim == S
in the -hd-eq-s cases); or module: the hand-written GPT of tiny_gpt.py. With $EXPORT_CHECK_PACKED=1 transformers' packed-sequence detection stays on
(mod-export --packed-sequences) and each row holds two sequences (positions
restart at S/2). The model is exported with mod-export's
export_model (torch-mlir, linalg-on-tensors) and compiled.

Dense: mod-run's logits must match transformers' own forward within 1e-4 of
their largest magnitude.

--mod=C: the export is converted with mod-opt --mod-dense-to-mod="capacity=C
return-routing" (every other block routed) and compared with a Mixture-of-
Depths forward written here on the transformers modules (ARCHITECTURE.md
section 2): for a routed block, r = x . w, the K largest r per row (ties to
the lower index) in ascending order, the block runs on the gathered tokens
with their positions (attention causal by position, RoPE/wpe by position),
and x[I] += r[I] * (block(x_I) - x_I). The routed indices must be equal and
the logits within 1e-4. Router weights: mod-run --init-missing draws them
(listed on stderr) and --save-weights hands them to the PyTorch side.
"""
import importlib.util
import json
import os
import subprocess
import sys

import torch
import transformers
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
spec = importlib.util.spec_from_file_location(
    "mod_export", os.path.join(ROOT, "tools", "mod-export", "mod-export.py"))
mod_export = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod_export)

B, S = int(os.environ.get("EXPORT_CHECK_BATCH", "2")), 8
CASES = {
    "gpt2": ("gpt2", dict(n_layer=2, n_embd=32, n_head=2, n_positions=32, vocab_size=96,
                          bos_token_id=0, eos_token_id=0)),
    "gpt2-hd-eq-s": ("gpt2", dict(n_layer=2, n_embd=16, n_head=2, n_positions=32,
                                  vocab_size=96, bos_token_id=0, eos_token_id=0)),
    "llama": ("llama", dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                            num_key_value_heads=1, intermediate_size=48, vocab_size=96,
                            max_position_embeddings=64, rope_parameters={
                                "rope_type": "default", "rope_theta": 500000.0})),
    "llama-hd-eq-s": ("llama", dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                                    num_key_value_heads=2, intermediate_size=48, vocab_size=96,
                                    max_position_embeddings=64)),
}


def run(*cmd):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-4000:])
        sys.exit("%s failed (exit %d)" % (cmd[0], result.returncode))
    return result


def rel_err(got, want):
    return float((got.double() - want.double()).abs().max() / want.double().abs().max())


def build(name):
    torch.manual_seed(1234)
    if name == "module":
        sys.path.insert(0, HERE)
        import tiny_gpt
        return "module", tiny_gpt.make().eval()
    family, fields = CASES[name]
    if family == "gpt2":
        config = transformers.GPT2Config(**fields)
        model = transformers.GPT2LMHeadModel(config)
    else:
        config = transformers.LlamaConfig(**fields)
        model = transformers.LlamaForCausalLM(config)
    config._attn_implementation = "eager"
    return family, model.eval()


def mask_by_position(pos, dtype):
    """Additive [B,1,T,T] mask: query i sees key j iff pos[j] <= pos[i]."""
    allowed = pos[:, None, :] <= pos[:, :, None]
    return torch.where(allowed, 0.0, torch.finfo(dtype).min).to(dtype)[:, None]


def mod_forward(family, model, tokens, positions, routers):
    """Logits and routed indices of the MoD model (routers: block -> [D])."""
    if family == "module":
        base, layers = model, model.blocks
        h = model.tok(tokens) + model.pos(positions)
    elif family == "gpt2":
        base, layers = model.transformer, model.transformer.h
        h = base.wte(tokens) + base.wpe(positions)
    else:
        base, layers = model.model, model.model.layers
        h = base.embed_tokens(tokens)

    def block(i, x, pos):
        if family == "module":
            return layers[i](x, pos)
        mask = mask_by_position(pos, x.dtype)
        if family == "gpt2":
            out = layers[i](x, attention_mask=mask)
        else:
            emb = base.rotary_emb(x, pos)
            out = layers[i](x, attention_mask=mask, position_ids=pos, position_embeddings=emb)
        return out[0] if isinstance(out, tuple) else out

    routed = {}
    for i in range(len(layers)):
        if i not in routers:
            h = block(i, h, positions)
            continue
        r = h @ routers[i]                                   # [B,S]
        k = routers["k"]
        order = torch.sort(-r, dim=1, stable=True).indices   # ties: lower index first
        idx = torch.sort(order[:, :k], dim=1).values         # ascending
        xk = torch.gather(h, 1, idx[:, :, None].expand(-1, -1, h.shape[-1]))
        pk = torch.gather(positions, 1, idx)
        d = block(i, xk, pk) - xk
        gate = torch.gather(r, 1, idx)[:, :, None]
        h = h.clone()
        h.scatter_add_(1, idx[:, :, None].expand(-1, -1, h.shape[-1]), gate * d)
        routed[i] = idx
    if family == "module":
        return model.head(model.ln(h)), routed
    h = base.ln_f(h) if family == "gpt2" else base.norm(h)
    return model.lm_head(h), routed


def main():
    work, name = sys.argv[1], sys.argv[2]
    capacity = next((a.split("=", 1)[1] for a in sys.argv[3:] if a.startswith("--mod=")), None)
    os.makedirs(work, exist_ok=True)
    family, model = build(name)
    dense = os.path.join(work, "dense.mlir")
    weights = os.path.join(work, "weights.safetensors")
    packed = os.environ.get("EXPORT_CHECK_PACKED") == "1"
    count = mod_export.export_model(model, family != "module", B, S, "i32", dense, weights,
                                    packed_sequences=packed)
    print("%s: exported %d parameters" % (name, count))

    torch.manual_seed(99)
    vocab = 96
    tokens = torch.randint(0, vocab, (B, S), dtype=torch.int32)
    positions = torch.arange(S, dtype=torch.int32).expand(B, S).contiguous()
    if packed:
        # Two sequences packed in each row: positions restart at S/2, which
        # transformers' detection (a cumulative sum) turns into a block mask.
        positions = positions % (S // 2)
    inputs = os.path.join(work, "inputs.safetensors")
    save_file({"tokens": tokens, "positions": positions}, inputs)

    with torch.no_grad():
        if capacity is None:
            run("mod-compile", dense, "-o", os.path.join(work, "dense"))
            out = os.path.join(work, "dense-out.safetensors")
            run("mod-run", os.path.join(work, "dense"), "--inputs=" + inputs,
                "--weights=" + weights, "--outputs=" + out)
            got = next(iter(load_file(out).values()))
            if family == "module":
                want = model(tokens.long(), positions.long())
            else:
                want = model(input_ids=tokens.long(), position_ids=positions.long(),
                             use_cache=False).logits
            err = rel_err(got, want)
            print("%s: dense logits max rel err %.2e (%d elements)" % (name, err, want.numel()))
            if err > 1e-4:
                sys.exit("%s: dense logits mismatch" % name)
            return

        mod = os.path.join(work, "mod.mlir")
        run("mod-opt", dense, "--mod-dense-to-mod=capacity=%s return-routing" % capacity,
            "-o", mod)
        run("mod-compile", mod, "-o", os.path.join(work, "mod"))
        out = os.path.join(work, "mod-out.safetensors")
        saved = os.path.join(work, "all.safetensors")
        result = run("mod-run", os.path.join(work, "mod"), "--inputs=" + inputs,
                     "--weights=" + weights, "--init-missing", "--seed=5",
                     "--save-weights=" + saved, "--outputs=" + out)
        sys.stderr.write(result.stderr)
        params = load_file(saved)
        manifest = json.load(open(os.path.join(work, "mod", "manifest.json")))
        routers = {}
        prefix = {"gpt2": "transformer.h.", "llama": "model.layers.",
                  "module": "blocks."}[family]
        for key, value in params.items():
            if key.endswith(".mod.router.weight"):
                routers[int(key[len(prefix):].split(".")[0])] = value
        if not routers:
            sys.exit("no router weights in %s" % saved)
        outputs = load_file(out)
        k = next(v.shape[1] for key, v in outputs.items() if key.startswith("routed_indices"))
        routers["k"] = k
        logits, routed = mod_forward(family, model, tokens.long(), positions.long(), routers)
        for i, idx in routed.items():
            got = outputs.get("routed_indices.%d" % i)
            if got is None:
                sys.exit("mod-run wrote no routed_indices.%d (outputs: %s)" % (i, sorted(outputs)))
            if not torch.equal(got.long(), idx):
                sys.exit("block %d routes %s, PyTorch %s" % (i, got.tolist(), idx.tolist()))
            print("%s: block %d routed indices equal (%d of %d tokens per row)" % (name, i, k, S))
            # Sequences that route different tokens tell a mask recomputed
            # for each sequence from one built for the first sequence only.
            if B > 1 and any(not torch.equal(idx[b], idx[0]) for b in range(1, B)):
                print("%s: block %d routes different tokens in different sequences" % (name, i))
        got = next(v for key, v in outputs.items() if not key.startswith("routed"))
        err = rel_err(got, logits)
        print("%s: MoD logits max rel err %.2e (%d elements)" % (name, err, logits.numel()))
        if err > 1e-4:
            sys.exit("%s: MoD logits mismatch" % name)
        del manifest


main()
