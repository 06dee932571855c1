"""Writes checkpoints the way transformers 5 publishes them, plus
transformers' own logits for one input (for hub-checkpoints.test):

    save-checkpoints.py OUT_DIR

OUT_DIR/llama: LlamaForCausalLM.save_pretrained with max_shard_size=20KB
(7 shards + model.safetensors.index.json), RoPE llama3 in rope_parameters.
OUT_DIR/gpt2: GPT2Model.save_pretrained (the base model, whose names carry
no `transformer.` prefix, as the GPT-2 checkpoints on the hub).
OUT_DIR/inputs.safetensors: tokens, positions (i32 [1,8]);
OUT_DIR/{llama,gpt2}-logits.safetensors: the causal LM's logits.
"""
import os
import sys

import torch
import transformers
from safetensors.torch import save_file

out = sys.argv[1]
torch.manual_seed(0)
llama = transformers.LlamaForCausalLM(transformers.LlamaConfig(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    intermediate_size=64, vocab_size=256, max_position_embeddings=64,
    rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                     "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 16})).eval()
llama.save_pretrained(os.path.join(out, "llama"), max_shard_size="20KB")
config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=64,
                                 vocab_size=256, bos_token_id=0, eos_token_id=0)
base = transformers.GPT2Model(config).eval()
base.save_pretrained(os.path.join(out, "gpt2"))
gpt2 = transformers.GPT2LMHeadModel(config).eval()
gpt2.transformer.load_state_dict(base.state_dict())
tokens = torch.tensor([[104, 101, 108, 108, 111, 32, 32, 32]])
positions = torch.arange(8)[None]
save_file({"tokens": tokens.int(), "positions": positions.int()},
          os.path.join(out, "inputs.safetensors"))
with torch.no_grad():
    for name, model in (("llama", llama), ("gpt2", gpt2)):
        logits = model(input_ids=tokens, position_ids=positions).logits.contiguous()
        save_file({"logits": logits}, os.path.join(out, name + "-logits.safetensors"))
