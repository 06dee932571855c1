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
with a cumulative sum; the exporter turns that detection off, so a row of
tokens is always one causal sequence: pass one sequence per row. With
--packed-sequences it stays on: the dense model then treats a row whose
positions restart as several sequences, but --mod-dense-to-mod refuses it
(the cumulative sum runs over the whole sequence, and a routed block sees
only its routed tokens).

torch-mlir exports a cumulative sum or product (torch.cumsum, torch.cumprod)
as `tm_tensor.scan`, which is not an upstream op; the exporter rewrites it
into upstream linalg.generic ops (an ordered reduction over j <= i along the
scanned dimension). Any other op outside the upstream dialects is an error.

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
    parser.add_argument("--packed-sequences", action="store_true",
                        help="keep transformers' packed-sequence detection (a cumulative "
                             "sum over position_ids; dense models only, --mod-dense-to-mod "
                             "refuses it)")
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
                         weights_path, packed_sequences=args.packed_sequences)
    sys.stderr.write("mod-export: wrote %s (%d parameters) and %s\n"
                     % (args.output, count, weights_path))


def export_model(model, hf, batch, seq, index_type, output, weights_path,
                 packed_sequences=False):
    """Exports `model` (a transformers causal LM when `hf`, else a module
    whose forward(tokens, positions) returns the logits) to `output` and its
    parameters to `weights_path`; returns the number of parameters.
    `packed_sequences` keeps transformers' packed-sequence detection."""
    import torch
    from torch.func import functional_call
    from torch_mlir import fx
    from torch_mlir import ir
    from safetensors.torch import save_file

    if hf and not packed_sequences:
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
    try:
        lower_scans(module)
    except ValueError as e:
        fail(str(e))
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

def lower_scans(module):
    """Rewrites every tm_tensor.scan (torch.cumsum / torch.cumprod) into
    upstream linalg.generic ops, in place; returns how many. Only the form
    torch-mlir emits is taken: an inclusive scan whose body is one
    arith.addi/addf/muli/mulf of its two arguments and whose accumulator
    starts at that operation's identity (a linalg.fill of 0 or 1). Then
    out[.., i, ..] = x[.., 0, ..] op ... op x[.., i, ..] is a reduction over
    a second loop j <= i along the scanned dimension (kept in order j = 0, 1,
    ...), and the final accumulator a reduction over the whole dimension."""
    from torch_mlir import ir
    from torch_mlir.dialects import arith, linalg

    identities = {"arith.addi": 0, "arith.addf": 0.0, "arith.muli": 1, "arith.mulf": 1.0}
    scans = []

    def collect(op):
        for region in op.regions:
            for block in region.blocks:
                for inner in block.operations:
                    if inner.operation.name == "tm_tensor.scan":
                        scans.append(inner.operation)
                    else:
                        collect(inner.operation)

    collect(module.operation)

    def refuse(scan, why):
        raise ValueError("cannot convert %s: %s" % (str(scan.location), why))

    for scan in scans:
        with scan.context, scan.location:
            dim = ir.IntegerAttr(scan.attributes["dimension"]).value
            inclusive = ir.BoolAttr(scan.attributes["inclusive"]).value
            body = list(scan.regions[0].blocks[0].operations)
            args = list(scan.regions[0].blocks[0].arguments)
            if not inclusive:
                refuse(scan, "an exclusive scan")
            if (len(body) != 2 or body[0].operation.name not in identities
                    or body[1].operation.name != "tm_tensor.yield"
                    or set(body[0].operation.operands) != set(args)
                    or list(body[1].operation.operands) != [body[0].operation.result]):
                refuse(scan, "its body is not one add or multiply of its two arguments")
            kind = body[0].operation.name
            x, acc_init = scan.operands[0], scan.operands[2]
            fill = acc_init.owner
            if fill.name != "linalg.fill" or fill.operands[0].owner.name != "arith.constant":
                refuse(scan, "its accumulator does not start from a constant")
            start = fill.operands[0].owner.attributes["value"]
            identity = identities[kind]
            start_value = (ir.FloatAttr(start).value if isinstance(identity, float)
                           else ir.IntegerAttr(start).value)
            if start_value != identity:
                refuse(scan, "its accumulator starts at %s, not at %s's identity" % (start_value, kind))
            out_type = ir.RankedTensorType(scan.results[0].type)
            acc_type = ir.RankedTensorType(scan.results[1].type)
            elem = out_type.element_type
            rank = out_type.rank
            ip = ir.InsertionPoint(scan)

            def filled(ttype):
                return arith.ConstantOp(ttype, ir.DenseElementsAttr.get_splat(ttype, start),
                                        ip=ip).result

            def combine(block_ip, a, b):
                return ir.Operation.create(kind, results=[elem], operands=[a, b],
                                           ip=block_ip).result

            d = [ir.AffineExpr.get_dim(i) for i in range(rank + 1)]
            maps = ir.ArrayAttr.get([
                ir.AffineMapAttr.get(ir.AffineMap.get(rank + 1, 0, d[:dim] + [d[rank]] + d[dim + 1:rank])),
                ir.AffineMapAttr.get(ir.AffineMap.get(rank + 1, 0, d[:rank]))])
            par = ir.Attribute.parse("#linalg.iterator_type<parallel>")
            red = ir.Attribute.parse("#linalg.iterator_type<reduction>")
            out = linalg.GenericOp([out_type], [x], [filled(out_type)], maps,
                                   ir.ArrayAttr.get([par] * rank + [red]), ip=ip)
            block = out.regions[0].blocks.append(elem, elem)
            bip = ir.InsertionPoint(block)
            i = linalg.IndexOp(dim, ip=bip).result
            j = linalg.IndexOp(rank, ip=bip).result
            le = arith.CmpIOp(arith.CmpIPredicate.ule, j, i, ip=bip).result
            s = combine(bip, block.arguments[1], block.arguments[0])
            linalg.YieldOp([arith.SelectOp(le, s, block.arguments[1], ip=bip).result], ip=bip)

            e = [ir.AffineExpr.get_dim(k) for k in range(rank)]
            maps = ir.ArrayAttr.get([
                ir.AffineMapAttr.get(ir.AffineMap.get(rank, 0, e)),
                ir.AffineMapAttr.get(ir.AffineMap.get(rank, 0, e[:dim] + e[dim + 1:]))])
            total = linalg.GenericOp([acc_type], [x], [filled(acc_type)], maps,
                                     ir.ArrayAttr.get([par] * dim + [red] + [par] * (rank - dim - 1)),
                                     ip=ip)
            block = total.regions[0].blocks.append(elem, elem)
            bip = ir.InsertionPoint(block)
            linalg.YieldOp([combine(bip, block.arguments[1], block.arguments[0])], ip=bip)

            scan.results[0].replace_all_uses_with(out.result)
            scan.results[1].replace_all_uses_with(total.result)
            del body, args
            scan.erase()
    return len(scans)


if __name__ == "__main__":
    main()
