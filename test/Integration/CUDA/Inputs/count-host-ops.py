#!/usr/bin/env python3
"""Counts, per entry point, what the host code of a CUDA model does per call.

Reads the module printed after --mod-gpu-stream-order (mod-opt
--mod-cuda-lowering -mlir-print-ir-after=mod-gpu-stream-order) and prints,
for every public func.func with a body, one line

  @NAME: h2d=N d2h=N d2d=N launches=N cublas=N syncs=N host-reads=N device-accesses=N

h2d/d2h/d2d: gpu.memcpy ops by direction. A memcpy operand is host memory
when it is an argument of the function that its mod.device_resident_args
does not list (the runtime passes host buffers for those) or a
memref.alloca (the host staging buffer of a count the host reads, e.g. a
decode step's routed rows), device memory otherwise (gpu.alloc results,
views of them, device-resident arguments).
launches: gpu.launch_func ops. cublas: calls of modrt_cublas_* and
modrt_cublaslt_* functions (cuBLAS and cuBLASLt).
syncs: host synchronizations, i.e. blocking gpu.wait ops (without `async`).
host-reads: memref.load of a host memref.alloca (a value copied device ->
host). device-accesses: any other memref.load/store/atomic_rmw in host code
(kernels are outlined by then), which would dereference device memory.
"""
import re
import sys

FUNC = re.compile(r"^\s*func\.func @([\w.$-]+)\((.*)\)\s*(.*)\{\s*$")
ARG = re.compile(r"(%arg\d+): [^{,]+(?:\{([^}]*)\})?")


def main():
    text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
    counts = []
    current = None
    host_args = set()
    staging_bufs = set()
    depth = 0
    for line in text.splitlines():
        m = FUNC.match(line)
        if m and current is None and "private" not in line.split("@")[0]:
            current = {"name": m.group(1), "h2d": 0, "d2h": 0, "d2d": 0,
                       "launches": 0, "cublas": 0, "syncs": 0,
                       "reads": 0, "device": 0}
            resident = re.search(r"mod\.device_resident_args = array<i64(?:: ([\d, ]*))?>",
                                 m.group(3) or "")
            resident = {"%arg" + i.strip() for i in
                        (resident.group(1) or "").split(",") if i.strip()} \
                if resident else set()
            host_args = {arg for arg, _ in ARG.findall(m.group(2))} - resident
            depth = 1
            continue
        if current is None:
            continue
        staging = re.match(r"\s*(%[\w]+) = memref\.alloca\(\)", line)
        if staging:
            host_args.add(staging.group(1))
            staging_bufs.add(staging.group(1))
        depth += line.count("{") - line.count("}")
        if depth <= 0:
            counts.append(current)
            current = None
            continue
        if "gpu.memcpy" in line:
            ops = re.search(r"gpu\.memcpy(?: async)?(?: \[[^\]]*\])? (%[\w]+), (%[\w]+)",
                            line)
            dst, src = ops.group(1), ops.group(2)
            if src in host_args and dst not in host_args:
                current["h2d"] += 1
            elif dst in host_args and src not in host_args:
                current["d2h"] += 1
            elif dst not in host_args and src not in host_args:
                current["d2d"] += 1
            else:
                sys.exit("host-to-host gpu.memcpy: " + line.strip())
        access = re.search(r"memref\.(load|store|atomic_rmw)\b.*?(%[\w]+)\[", line)
        if access:
            if access.group(1) == "load" and access.group(2) in staging_bufs:
                current["reads"] += 1
            else:
                current["device"] += 1
        if "gpu.launch_func" in line:
            current["launches"] += 1
        if re.search(r"call @modrt_cublas(lt)?_", line):
            current["cublas"] += 1
        if re.search(r"\bgpu\.wait\b", line) and "async" not in line:
            current["syncs"] += 1
    for c in counts:
        print("@{name}: h2d={h2d} d2h={d2h} d2d={d2d} launches={launches} "
              "cublas={cublas} syncs={syncs} host-reads={reads} "
              "device-accesses={device}".format(**c))


if __name__ == "__main__":
    main()
