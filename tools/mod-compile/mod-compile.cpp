//===- mod-compile.cpp - compile a modc program to a loadable artifact ----===//
//
// mod-compile in.mlir --target=cpu -o out/
//
// The command line over mod/Compiler/Compile.h, which lowers in-process,
// links out/model.so and writes out/manifest.json. The output directory is
// produced aside and swapped in as a whole, so a failed run leaves the
// previous artifact untouched and never pairs a new model.so with an old
// manifest.
//
//===----------------------------------------------------------------------===//

#include "mod/Compiler/Compile.h"
#include "mod/InitAllModc.h"

#include "mlir/IR/MLIRContext.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/TargetSelect.h"

using namespace mlir;
namespace cl = llvm::cl;

static cl::OptionCategory category("mod-compile options");
static cl::opt<std::string> inputFile(cl::Positional, cl::Required,
                                      cl::desc("<input .mlir file>"),
                                      cl::cat(category));
static cl::opt<std::string> outputDir(
    "o", cl::Required, cl::value_desc("directory"),
    cl::desc("Output directory; receives model.so and manifest.json. It is "
             "built next to the given path and replaces it as a whole; other "
             "files already in it are kept"),
    cl::cat(category));
static cl::opt<std::string>
    target("target", cl::init("cpu"), cl::value_desc("cpu|cuda"),
           cl::desc("Code generation target (default: cpu)"),
           cl::cat(category));
static cl::opt<unsigned>
    cudaSM("sm", cl::init(90), cl::value_desc("N"),
           cl::desc("--target=cuda: compute capability to compile the "
                    "kernels for (default: 90, i.e. sm_90); one of 75, 80, "
                    "86, 87, 88, 89, 90, 100, 103, 110, 120, 121"),
           cl::cat(category));
static cl::opt<bool>
    cudaTF32("cuda-tf32", cl::init(false),
             cl::desc("--target=cuda: let cuBLAS run the f32 matrix "
                      "multiplications on TF32 tensor cores (inputs rounded "
                      "to 10 mantissa bits, f32 accumulation; faster on "
                      "sm_80 and newer). Default: off, exact f32 GEMMs"),
             cl::cat(category));
static cl::opt<std::string> cudaPrecision(
    "cuda-precision", cl::init("f32"), cl::value_desc("f32|bf16"),
    cl::desc("--target=cuda: precision of the matrix multiplications. f32 "
             "(default): exact f32 GEMMs. bf16: mixed precision, the GEMM "
             "operands are converted to bf16 by generated kernels and cuBLAS "
             "multiplies them on bf16 tensor cores with f32 accumulation and "
             "f32 results; parameters (master weights), gradients, optimizer "
             "state and every other operation (elementwise, softmax, "
             "normalization, loss) stay f32. Needs --sm=80 or newer; not "
             "with --cuda-tf32. Recorded in the manifest (gemm_precision)"),
    cl::cat(category));
static cl::opt<std::string>
    cudaRoot("cuda-root", cl::init(""), cl::value_desc("path"),
             cl::desc("--target=cuda: CUDA toolkit root holding bin/ptxas "
                      "(default: $CUDA_ROOT, $CUDA_HOME, $CUDA_PATH, "
                      "/usr/local/cuda)"),
             cl::cat(category));
static cl::opt<unsigned>
    optLevel("O", cl::init(2), cl::Prefix, cl::value_desc("0-3"),
             cl::desc("LLVM optimization level for the generated code "
                      "(default: 2)"),
             cl::cat(category));
static cl::opt<std::string>
    cpu("cpu", cl::init("host"), cl::value_desc("name"),
        cl::desc("CPU to generate code for, as LLVM names it (e.g. x86-64-v3, "
                 "znver4); 'host' (the default) tunes for and uses every "
                 "feature of the compiling machine, so the model.so may not "
                 "run on an older CPU"),
        cl::cat(category));
static cl::opt<std::string>
    linker("linker", cl::init(""), cl::value_desc("path"),
           cl::desc("C compiler driver used to link model.so (default: the "
                    "first of $CC, cc, clang-22, clang, gcc on PATH)"),
           cl::cat(category));
static cl::opt<bool>
    keepIntermediates("keep-intermediates", cl::init(false),
                      cl::desc("Also write lowered.mlir, model.ll and model.o "
                               "to the output directory"),
                      cl::cat(category));
static cl::opt<bool> verbose("v", cl::init(false),
                             cl::desc("Print each compilation stage"),
                             cl::cat(category));

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  mod::registerModcPasses();
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "mod-compile: compile a modc program (mod/linalg/tensor MLIR) into a "
      "loadable model.so plus manifest.json for libmodrt and mod-run\n");

  mod::CompileOptions options;
  options.target = target;
  options.cudaSM = cudaSM;
  options.cudaRoot = cudaRoot;
  options.cudaTF32 = cudaTF32;
  options.cudaPrecision = cudaPrecision;
  options.optLevel = optLevel;
  options.cpu = cpu;
  options.linker = linker;
  options.keepIntermediates = keepIntermediates;
  options.verbose = verbose;

  DialectRegistry registry;
  mod::registerModcDialects(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  return failed(mod::compileFile(context, inputFile, outputDir, options)) ? 1
                                                                          : 0;
}
