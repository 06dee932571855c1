#!/usr/bin/env python3
"""mod-export: a PyTorch model -> the dense .mlir that `mod-opt` takes, plus
its weights as safetensors.

    mod-export.py --hf=NAME_OR_DIR [--random-weights] --batch=B --seq=S
                  -o model.mlir [--weights=model.safetensors]
    mod-export.py --hf-config=config.json --batch=B --seq=S -o model.mlir
    mod-export.py --module=package.module:factory --batch=B --seq=S -o ...

The model is exported with torch.export and torch-mlir's FX importer
(torch_mlir.fx.export_and_import, output_type="linalg-on-tensors") as
`func.func @forward(<parameters>, %tokens: tensor<BxSxi32>,
%positions: tensor<BxSxi32>) -> tensor<BxSxVxf32>` (the logits, named
`logits`). Every
parameter is a function argument with `mod.name` (its name in
model.named_parameters(): the Hugging Face checkpoint name; tied weights
appear once) and `mod.kind = "parameter"`; tokens and positions carry
`mod.name = "tokens"` / `"positions"`. The weights file holds the parameters
under the same names (f32), so `mod-run --weights`, `mod-train --weights`
and `mod-sample --weights` load them, and mod-opt's --mod-dense-to-mod can
train the model.

Sources:
  --hf=NAME_OR_DIR   AutoModelForCausalLM.from_pretrained (a local directory,
                     or a hub name when the machine can reach the hub);
                     with --random-weights only its config is read and the
                     weights are drawn from --seed.
  --hf-config=FILE   a config.json (or a directory holding one): the model
                     with weights drawn from --seed (transformers' own init).
  --module=M:F       calls F() from Python module M (on sys.path, or
                     --module-path) for a torch.nn.Module whose
                     forward(tokens, positions) returns the logits [B,S,V].

Hugging Face models are exported with attn_implementation="eager" (plain
matmul + softmax: SDPA would become a torch-mlir-specific attention op) and
use_cache=False. transformers detects packed sequences from position_ids
with a cumulative sum (a `tm_tensor.scan`, not an upstream op); the exporter
turns that detection off, so a row of tokens is always one causal sequence:
pass one sequence per row.

Dependencies (torch, transformers, torch-mlir from PyPI) live in a virtual
environment that tools/mod-export/mod-export creates on first use.
"""
import argparse
import importlib
import json
import os
import sys


def fail(message):
    sys.stderr.write("mod-export: error: %s\n" % message)
    sys.exit(1)


def load_hf(args, torch, transformers):
    source = args.hf or args.hf_config
    if args.hf_config:
        path = args.hf_config
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        if not os.path.isfile(path):
            fail("--hf-config: %s is not a config.json or a directory holding one" % args.hf_config)
        with open(path) as f:
            fields = json.load(f)
        if not isinstance(fields, dict) or "model_type" not in fields:
            fail("--hf-config: %s has no model_type" % path)
        config = transformers.AutoConfig.for_model(fields.pop("model_type"), **fields)
        random = True
    else:
        config = transformers.AutoConfig.from_pretrained(source)
        random = args.random_weights
    config._attn_implementation = "eager"
    config.use_cache = False
    if random:
        torch.manual_seed(args.seed)
        model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    else:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            source, attn_implementation="eager", torch_dtype=torch.float32)
    return model


def main():
    parser = argparse.ArgumentParser(
        prog="mod-export", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__[__doc__.index("The model is exported"):])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--hf", metavar="NAME_OR_DIR",
                        help="a Hugging Face causal LM (local directory or hub name)")
    source.add_argument("--hf-config", metavar="FILE",
                        help="a Hugging Face config.json; weights drawn from --seed")
    source.add_argument("--module", metavar="MODULE:FACTORY",
                        help="FACTORY() from Python module MODULE returns the nn.Module")
    parser.add_argument("--module-path", action="append", default=[],
                        help="directory added to sys.path for --module (repeatable)")
    parser.add_argument("--random-weights", action="store_true",
                        help="with --hf: read only the config, draw the weights from --seed")
    parser.add_argument("--seed", type=int, default=0,
                        help="torch.manual_seed before drawing weights (default 0)")
    parser.add_argument("--batch", type=int, required=True, help="sequences per call (static)")
    parser.add_argument("--seq", type=int, required=True, help="tokens per sequence (static)")
    parser.add_argument("--index-type", choices=["i32", "i64"], default="i32",
                        help="element type of tokens and positions (default i32, what "
                             "mod-run --prompt and mod-train feed)")
    parser.add_argument("-o", "--output", required=True, help="the .mlir to write")
    parser.add_argument("--weights", help="the safetensors file to write (default: the "
                                          "output with .safetensors instead of .mlir)")
    args = parser.parse_args()
    if args.batch < 1 or args.seq < 1:
        fail("--batch and --seq must be at least 1")
    weights_path = args.weights or os.path.splitext(args.output)[0] + ".safetensors"

    import torch
    if args.module:
        module_name, _, factory = args.module.partition(":")
        if not factory:
            fail("--module takes MODULE:FACTORY")
        sys.path[:0] = args.module_path
        torch.manual_seed(args.seed)
        model = getattr(importlib.import_module(module_name), factory)()
        hf = False
    else:
        import transformers
        model = load_hf(args, torch, transformers)
        hf = True
    count = export_model(model, hf, args.batch, args.seq, args.index_type, args.output,
                         weights_path)
    sys.stderr.write("mod-export: wrote %s (%d parameters) and %s\n"
                     % (args.output, count, weights_path))


def export_model(model, hf, batch, seq, index_type, output, weights_path):
    """Exports `model` (a transformers causal LM when `hf`, else a module
    whose forward(tokens, positions) returns the logits) to `output` and its
    parameters to `weights_path`; returns the number of parameters."""
    import torch
    from torch.func import functional_call
    from torch_mlir import fx
    from torch_mlir import ir
    from safetensors.torch import save_file

    if hf:
        import transformers.masking_utils as masking
        # No packed-sequence detection (a cumsum over position_ids).
        masking.find_packed_sequence_indices = lambda position_ids: None
    model.eval()

    # Parameters become arguments: functional_call with the parameters as
    # inputs of the exported program (tied weights are one parameter).
    names, tensors = [], []
    for name, p in model.named_parameters():
        names.append(name)
        tensors.append(p.detach().to(torch.float32).contiguous())

    class Exported(torch.nn.Module):
        def forward(self, *inputs):
            params = dict(zip(names, inputs[:len(names)]))
            tokens, positions = inputs[len(names):]
            if hf:
                return functional_call(model, params, (), {
                    "input_ids": tokens, "position_ids": positions,
                    "use_cache": False}).logits
            return functional_call(model, params, (tokens, positions))

    index_dtype = torch.int32 if index_type == "i32" else torch.int64
    vocab = getattr(getattr(model, "config", None), "vocab_size", 2)
    tokens = torch.randint(0, vocab, (batch, seq), dtype=index_dtype)
    positions = torch.arange(seq, dtype=index_dtype).expand(batch, seq).contiguous()
    with torch.no_grad():
        module = fx.export_and_import(Exported(), *tensors, tokens, positions,
                                      output_type="linalg-on-tensors", func_name="forward")

    # Name the arguments as mod-import does.
    with module.context:
        func = next(op for op in module.body.operations
                    if op.operation.name == "func.func" and
                    ir.StringAttr(op.attributes["sym_name"]).value == "forward")
        attrs = [ir.DictAttr.get({"mod.name": ir.StringAttr.get(name),
                                  "mod.kind": ir.StringAttr.get("parameter")})
                 for name in names]
        attrs += [ir.DictAttr.get({"mod.name": ir.StringAttr.get(name)})
                  for name in ("tokens", "positions")]
        func.attributes["arg_attrs"] = ir.ArrayAttr.get(attrs)
        func.attributes["res_attrs"] = ir.ArrayAttr.get(
            [ir.DictAttr.get({"mod.name": ir.StringAttr.get("logits")})])
    text = module.operation.get_asm(large_elements_limit=None)
    for line in text.splitlines():
        if "tm_tensor." in line or " torch." in line:
            fail("the exported module still holds an op that mod-opt does not take: %s"
                 % line.strip()[:200])
    for path in (output, weights_path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = output + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    save_file(dict(zip(names, tensors)), weights_path + ".tmp", metadata={"format": "pt"})
    os.replace(tmp, output)
    os.replace(weights_path + ".tmp", weights_path)
    return len(names)

if __name__ == "__main__":
    main()
