"""Writes the configurations in this directory with the transformers release
that runs it (not run by the tests; kept to show where the files come from):

    python make-configs.py OUT_DIR

OUT_DIR/<case>.json: config.json as LlamaConfig / GPT2Config.save_pretrained
writes it (transformers 5: `rope_parameters`; 4.x: `rope_theta` and
`rope_scaling`). With torch installed, OUT_DIR/rope-values.json also gets
transformers' own RoPE tables for each LLaMA case: the inv_freq and the
attention scaling that ROPE_INIT_FUNCTIONS return (transformers computes
them in float32).
"""
import json
import os
import sys

import transformers
from transformers import GPT2Config, LlamaConfig

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
major = int(transformers.__version__.split(".")[0])

LLAMA = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
             num_key_value_heads=1, intermediate_size=96, vocab_size=256,
             max_position_embeddings=64, rms_norm_eps=1e-6)
ROPE = {
    "llama-rope-default": (500000.0, {"rope_type": "default"}),
    "llama-rope-linear": (10000.0, {"rope_type": "linear", "factor": 4.0}),
    "llama-rope-dynamic": (10000.0, {"rope_type": "dynamic", "factor": 2.0}),
    "llama-rope-llama3": (500000.0, {"rope_type": "llama3", "factor": 8.0,
                                     "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 32}),
    "llama-rope-yarn": (10000.0, {"rope_type": "yarn", "factor": 4.0,
                                  "original_max_position_embeddings": 16}),
    "llama-rope-yarn-mscale": (10000.0, {"rope_type": "yarn", "factor": 4.0,
                                         "original_max_position_embeddings": 16,
                                         "beta_fast": 8.0, "beta_slow": 2.0,
                                         "mscale": 0.707, "mscale_all_dim": 1.0,
                                         "truncate": False}),
}

values = {}
for name, (theta, rope) in ROPE.items():
    if major >= 5:
        config = LlamaConfig(**LLAMA, rope_parameters=dict(rope, rope_theta=theta))
    else:
        config = LlamaConfig(**LLAMA, rope_theta=theta,
                             rope_scaling=None if rope["rope_type"] == "default" else rope)
    path = os.path.join(out, name)
    config.save_pretrained(path)
    os.replace(os.path.join(path, "config.json"), path + ".json")
    os.rmdir(path)
    try:
        from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
        import torch  # noqa: F401
    except ImportError:
        continue
    fn = ROPE_INIT_FUNCTIONS.get(rope["rope_type"])
    if fn is not None:
        inv_freq, scaling = fn(config, "cpu")
    else:  # transformers 5 computes the default type in the model
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
        inv_freq, scaling = LlamaRotaryEmbedding.compute_default_rope_parameters(config)
    values[name] = {"inv_freq": [float(x) for x in inv_freq],
                    "attention_scaling": float(scaling)}

GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=64, vocab_size=256).save_pretrained(
    os.path.join(out, "gpt2"))
os.replace(os.path.join(out, "gpt2", "config.json"), os.path.join(out, "gpt2.json"))
os.rmdir(os.path.join(out, "gpt2"))
if values:
    with open(os.path.join(out, "rope-values.json"), "w") as f:
        json.dump({"transformers_version": transformers.__version__, "cases": values}, f,
                  indent=1)
