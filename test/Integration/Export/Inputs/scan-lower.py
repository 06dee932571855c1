"""Prints what mod-export makes of torch.cumsum / torch.cumprod (torch-mlir's
tm_tensor.scan) on a small module: upstream linalg.generic ops only."""
import importlib.util
import os

import torch
from torch_mlir import fx

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "mod_export", os.path.join(HERE, "..", "..", "..", "..", "tools", "mod-export", "mod-export.py"))
mod_export = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod_export)


class Scans(torch.nn.Module):
    def forward(self, ids, x):
        return torch.cumsum(ids, 1), torch.cumprod(x, 0)


module = fx.export_and_import(Scans(), torch.zeros(2, 6, dtype=torch.int64), torch.ones(5, 3),
                              output_type="linalg-on-tensors", func_name="forward")
print("scans before: %d" % module.operation.get_asm().count("tm_tensor.scan"))
print("lowered: %d" % mod_export.lower_scans(module))
module.operation.verify()
print(module.operation.get_asm(print_generic_op_form=False))
