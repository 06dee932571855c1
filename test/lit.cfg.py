# -*- Python -*-
# lit configuration for the modc regression suite.

import os

import subprocess

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "MODC"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.modc_obj_root, "test")
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "lib", "Inputs"]

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%modc_src_root", config.modc_src_root))
config.substitutions.append(("%modc_obj_root", config.modc_obj_root))

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP", "CC",
                                     "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"])
llvm_config.use_default_substitutions()

# modc's own tools come from this build directory only: a tool that is missing
# there (a partial build) stops the whole run with a fatal error instead of
# resolving to a same-named file elsewhere or failing test by test.
tools = ["mod-opt", "mod-import", "mod-compile", "mod-run", "mod-tokenize", "mod-refcheck", "mod-reference", "mod-optcheck", "mod-gradcheck", "mod-decode-check", "mod-train", "mod-sample"]
# libfuzzer: CMake built the fuzz targets (clang with libclang-rt-22-dev; see
# fuzz/CMakeLists.txt); then they are required like the other tools. test/Fuzz
# runs each briefly with a fixed seed.
fuzz_targets = [t for t in config.modc_fuzz_targets.split(";") if t]
if fuzz_targets:
    config.available_features.add("libfuzzer")
llvm_config.add_tool_substitutions(
    [ToolSubst(t, unresolved="fatal") for t in tools + fuzz_targets],
    [config.modc_tools_dir])
llvm_config.with_environment("PATH", config.modc_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

# can-mknod: this process may create device nodes (root, and the build
# directory's file system is not mounted nodev), for tests that write to a
# private copy of /dev/null.
import tempfile
try:
    with tempfile.TemporaryDirectory(dir=config.modc_obj_root) as _d:
        os.mknod(os.path.join(_d, "null"), 0o666 | __import__("stat").S_IFCHR, os.makedev(1, 3))
        with open(os.path.join(_d, "null"), "wb") as _f:
            _f.write(b"x")
        config.available_features.add("can-mknod")
except OSError:
    pass

# fortunes: Debian's fortune files, the bundled training corpus (installed by
# scripts/setup.sh).
if os.path.isdir("/usr/share/games/fortunes"):
    config.available_features.add("fortunes")

# export-venv: the exporter's virtual environment (torch, transformers,
# torch-mlir; created by tools/mod-export/mod-export --setup, never by the
# suite, which must not need the network) exists under the build directory.
# Checked by its installed packages, without importing torch.
_export_venv = os.path.join(config.modc_obj_root, "export-venv")
_export_python = os.path.join(_export_venv, "bin", "python")
import glob
_missing = [p for p in ("torch", "transformers", "torch_mlir", "safetensors")
            if not glob.glob(os.path.join(_export_venv, "lib", "python3*", "site-packages", p))]
if os.access(_export_python, os.X_OK) and not _missing:
    config.available_features.add("export-venv")
    config.substitutions.append(("%export_python", _export_python))
else:
    lit_config.note("test/Integration/Export is skipped: %s (create it with "
                    "tools/mod-export/mod-export --setup, which installs torch, transformers "
                    "and torch-mlir from PyPI)" %
                    ("no " + _export_python if not os.access(_export_python, os.X_OK)
                     else _export_venv + " lacks " + ", ".join(_missing)))

# matplotlib: Debian's python3-matplotlib for scripts/plot-metrics.
if os.path.exists("/usr/bin/python3") and subprocess.run(
        ["/usr/bin/python3", "-c", "import matplotlib"], capture_output=True).returncode == 0:
    config.available_features.add("matplotlib")

# ---- CUDA features (owned by the CUDA target) -------------------------------
# cuda-toolkit: ptxas is available (PTX -> cubin, ptxas -v, mod-compile
# --target=cuda). cuda-gpu: a GPU is visible right now (probed at test time,
# so the same build runs the kernel-launching tests where a GPU exists).
import shutil
import subprocess

def _modc_cuda_root():
    for var in ("CUDA_ROOT", "CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            return os.environ[var]
    return "/usr/local/cuda"

_cuda_root = _modc_cuda_root()
config.substitutions.append(("%cuda_root", _cuda_root))
if os.access(os.path.join(_cuda_root, "bin", "ptxas"), os.X_OK):
    config.available_features.add("cuda-toolkit")
    llvm_config.with_environment("PATH", os.path.join(_cuda_root, "bin"), append_path=True)
    # cuobjdump: the toolkit's, one on PATH, or the one scripts/setup.sh
    # installs from PyPI (nvidia-cuda-cuobjdump) into the build directory.
    for _dir in (os.path.join(_cuda_root, "bin"),
                 os.path.join(config.modc_obj_root, "pip", "nvidia", "cu13", "bin")):
        if os.access(os.path.join(_dir, "cuobjdump"), os.X_OK):
            llvm_config.with_environment("PATH", _dir, append_path=True)
            config.available_features.add("cuobjdump")
            break
    else:
        if shutil.which("cuobjdump"):
            config.available_features.add("cuobjdump")
if os.path.exists(os.path.join(config.modc_obj_root, "lib", "libmodrt_cuda.so")):
    config.available_features.add("modrt-cuda")
_smi = shutil.which("nvidia-smi")
if _smi:
    try:
        _out = subprocess.run([_smi, "-L"], capture_output=True, text=True, timeout=30)
        if _out.returncode == 0 and "GPU" in _out.stdout:
            config.available_features.add("cuda-gpu")
    except (OSError, subprocess.SubprocessError):
        pass
