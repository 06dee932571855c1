"""Independent float64 reference of Hugging Face GPT2LMHeadModel and
LlamaForCausalLM forward passes, in plain Python (no numpy or torch needed).

usage: hf_reference.py CONFIG.json MODEL_DIR WORK_DIR

Reads MODEL_DIR/manifest.json (written by mod-compile for a model imported by
mod-import), draws random parameters, tokens and positions, runs the model
with `mod-run` (found on PATH), recomputes the logits here from the config
alone, and exits non-zero unless max |got - ref| <= 1e-4 * max |ref|.
"""
import json, math, random, struct, subprocess, sys

def write_st(path, tensors):
    header, blobs, off = {}, [], 0
    for name, (dtype, shape, data) in tensors.items():
        fmt = '<%d%s' % (len(data), 'f' if dtype == 'F32' else 'i')
        raw = struct.pack(fmt, *data)
        header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [off, off + len(raw)]}
        blobs.append(raw); off += len(raw)
    h = json.dumps(header).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h))); f.write(h)
        for b in blobs: f.write(b)

def read_st(path):
    d = open(path, 'rb').read()
    n = struct.unpack('<Q', d[:8])[0]
    hdr = json.loads(d[8:8 + n]); base = 8 + n; out = {}
    for name, m in hdr.items():
        if name == '__metadata__': continue
        s, e = m['data_offsets']
        out[name] = (m['shape'], list(struct.unpack('<%df' % ((e - s) // 4), d[base + s:base + e])))
    return out

def lin(x, W, nin, nout, layout, bias=None):
    y = []
    for o in range(nout):
        if layout == 'inout': acc = sum(x[i] * W[i * nout + o] for i in range(nin))
        else: acc = sum(x[i] * W[o * nin + i] for i in range(nin))
        y.append(acc + (bias[o] if bias else 0.0))
    return y

def layernorm(x, w, b, eps):
    n = len(x); m = sum(x) / n; v = sum((a - m) ** 2 for a in x) / n
    return [(a - m) / math.sqrt(v + eps) * w[i] + b[i] for i, a in enumerate(x)]

def rmsnorm(x, w, eps):
    n = len(x); ms = sum(a * a for a in x) / n
    return [a / math.sqrt(ms + eps) * w[i] for i, a in enumerate(x)]

def attention(q, k, v, pos, H, KV, hd):
    # q[s][h*hd], k/v[s][kv*hd] for one sequence
    S = len(q); G = H // KV; out = [[0.0] * (H * hd) for _ in range(S)]
    for h in range(H):
        kh = h // G
        for i in range(S):
            sc = []
            for j in range(S):
                if pos[j] <= pos[i]:
                    sc.append(sum(q[i][h*hd+e] * k[j][kh*hd+e] for e in range(hd)) / math.sqrt(hd))
                else: sc.append(None)
            mx = max(s for s in sc if s is not None)
            ex = [math.exp(s - mx) if s is not None else 0.0 for s in sc]
            z = sum(ex)
            for e in range(hd):
                out[i][h*hd+e] = sum(ex[j] / z * v[j][kh*hd+e] for j in range(S))
    return out

def gelu(x): return 0.5 * x * (1 + math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))

def rope(x, p, nh, hd, theta):
    half = hd // 2; out = list(x)
    for h in range(nh):
        for e in range(hd):
            i = e % half; ang = p * theta ** (-2.0 * i / hd)
            rot = -x[h*hd+e+half] if e < half else x[h*hd+e-half]
            out[h*hd+e] = x[h*hd+e] * math.cos(ang) + rot * math.sin(ang)
    return out

def gpt2(cfg, P, tokens, positions, B, S):
    D = cfg['n_embd']; H = cfg['n_head']; hd = D // H; I = cfg.get('n_inner') or 4 * D
    V = cfg['vocab_size']; eps = cfg['layer_norm_epsilon']; L = cfg['n_layer']
    wte = P['transformer.wte.weight']; wpe = P['transformer.wpe.weight']
    logits = []
    for b in range(B):
        h = [[wte[tokens[b][s]*D+d] + wpe[positions[b][s]*D+d] for d in range(D)] for s in range(S)]
        for l in range(L):
            p = 'transformer.h.%d.' % l
            x = [layernorm(r, P[p+'ln_1.weight'], P[p+'ln_1.bias'], eps) for r in h]
            qkv = [lin(r, P[p+'attn.c_attn.weight'], D, 3*D, 'inout', P[p+'attn.c_attn.bias']) for r in x]
            a = attention([r[:D] for r in qkv], [r[D:2*D] for r in qkv], [r[2*D:] for r in qkv], positions[b], H, H, hd)
            a = [lin(r, P[p+'attn.c_proj.weight'], D, D, 'inout', P[p+'attn.c_proj.bias']) for r in a]
            h = [[u + w for u, w in zip(r, t)] for r, t in zip(h, a)]
            x = [layernorm(r, P[p+'ln_2.weight'], P[p+'ln_2.bias'], eps) for r in h]
            m = [lin([gelu(t) for t in lin(r, P[p+'mlp.c_fc.weight'], D, I, 'inout', P[p+'mlp.c_fc.bias'])],
                     P[p+'mlp.c_proj.weight'], I, D, 'inout', P[p+'mlp.c_proj.bias']) for r in x]
            h = [[u + w for u, w in zip(r, t)] for r, t in zip(h, m)]
        h = [layernorm(r, P['transformer.ln_f.weight'], P['transformer.ln_f.bias'], eps) for r in h]
        head = wte if cfg.get('tie_word_embeddings', True) else P['lm_head.weight']
        logits.append([lin(r, head, D, V, 'outin') for r in h])
    return logits

def llama(cfg, P, tokens, positions, B, S):
    D = cfg['hidden_size']; H = cfg['num_attention_heads']; KV = cfg.get('num_key_value_heads', H)
    hd = cfg.get('head_dim') or D // H; I = cfg['intermediate_size']; V = cfg['vocab_size']
    eps = cfg['rms_norm_eps']; th = cfg.get('rope_theta', 10000.0); L = cfg['num_hidden_layers']
    emb = P['model.embed_tokens.weight']; logits = []
    for b in range(B):
        h = [[emb[tokens[b][s]*D+d] for d in range(D)] for s in range(S)]
        for l in range(L):
            p = 'model.layers.%d.' % l
            x = [rmsnorm(r, P[p+'input_layernorm.weight'], eps) for r in h]
            q = [rope(lin(r, P[p+'self_attn.q_proj.weight'], D, H*hd, 'outin'), positions[b][s], H, hd, th) for s, r in enumerate(x)]
            k = [rope(lin(r, P[p+'self_attn.k_proj.weight'], D, KV*hd, 'outin'), positions[b][s], KV, hd, th) for s, r in enumerate(x)]
            v = [lin(r, P[p+'self_attn.v_proj.weight'], D, KV*hd, 'outin') for r in x]
            a = attention(q, k, v, positions[b], H, KV, hd)
            a = [lin(r, P[p+'self_attn.o_proj.weight'], H*hd, D, 'outin') for r in a]
            h = [[u + w for u, w in zip(r, t)] for r, t in zip(h, a)]
            x = [rmsnorm(r, P[p+'post_attention_layernorm.weight'], eps) for r in h]
            m = []
            for r in x:
                g = lin(r, P[p+'mlp.gate_proj.weight'], D, I, 'outin'); u = lin(r, P[p+'mlp.up_proj.weight'], D, I, 'outin')
                m.append(lin([gg / (1 + math.exp(-gg)) * uu for gg, uu in zip(g, u)], P[p+'mlp.down_proj.weight'], I, D, 'outin'))
            h = [[u + w for u, w in zip(r, t)] for r, t in zip(h, m)]
        h = [rmsnorm(r, P['model.norm.weight'], eps) for r in h]
        head = emb if cfg.get('tie_word_embeddings', False) else P['lm_head.weight']
        logits.append([lin(r, head, D, V, 'outin') for r in h])
    return logits

def main():
    cfg_path, model_dir, work = sys.argv[1:4]
    cfg = json.load(open(cfg_path)); man = json.load(open(model_dir + '/manifest.json'))
    ins = man['entry_points'][0]['inputs']; rnd = random.Random(7)
    P, st = {}, {}
    tok_shape = [i for i in ins if i['name'] == 'tokens'][0]['shape']; B, S = tok_shape
    V = cfg['vocab_size']; maxpos = cfg.get('n_positions') or cfg.get('max_position_embeddings') or 64
    for i in ins:
        n = 1
        for d in i['shape']: n *= d
        if i.get('kind') == 'parameter':
            init = i['init']
            # Perturb ones/zeros so every norm weight and bias matters.
            if init == 'ones': data = [1.0 + rnd.gauss(0, 0.2) for _ in range(n)]
            elif init == 'zeros': data = [rnd.gauss(0, 0.2) for _ in range(n)]
            else: data = [rnd.gauss(0, 0.3) for _ in range(n)]
            data = list(struct.unpack('<%df' % n, struct.pack('<%df' % n, *data)))
            P[i['name']] = data; st[i['name']] = ('F32', i['shape'], data)
    tokens = [[rnd.randrange(V) for _ in range(S)] for _ in range(B)]
    # Row 0: 0..S-1; other rows: shuffled positions with gaps and a repeat,
    # so the mask must come from positions, not token indices.
    positions = [list(range(S))]
    for b in range(1, B):
        p = rnd.sample(range(min(maxpos, 3 * S)), S); p[-1] = p[0]; positions.append(p)
    st['tokens'] = ('I32', [B, S], sum(tokens, [])); st['positions'] = ('I32', [B, S], sum(positions, []))
    write_st(work + '/in.safetensors', st)
    subprocess.check_call(['mod-run', model_dir, '--inputs=' + work + '/in.safetensors', '--outputs=' + work + '/out.safetensors'])
    got = read_st(work + '/out.safetensors')['logits'][1]
    ref = (gpt2 if cfg['model_type'] == 'gpt2' else llama)(cfg, P, tokens, positions, B, S)
    ref = sum(sum(ref, []), [])
    scale = max(abs(r) for r in ref)
    err = max(abs(g - r) for g, r in zip(got, ref))
    rel = max(abs(g - r) / max(abs(r), 1e-3 * scale) for g, r in zip(got, ref))
    ok = len(got) == len(ref) and err <= 1e-4 * scale
    print('%s: %d logits, max|ref|=%.4g, max abs err=%.3g, max rel err=%.3g: %s'
          % (cfg_path, len(ref), scale, err, rel, 'within tolerance' if ok else 'MISMATCH'))
    sys.exit(0 if ok else 1)

main()
