//===- Link.cpp - link model.so with the system C compiler driver ---------===//

#include "mod/Compiler/CodeGen.h"
#include "mod/Pipelines/CUDAPipeline.h"
#include "mod/Pipelines/Pipelines.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <optional>

using namespace mlir;
using namespace mlir::mod;

static std::optional<std::string> findLinker(const CompileOptions &options) {
  if (!options.linker.empty())
    return options.linker;
  SmallVector<std::string> candidates;
  if (const char *cc = std::getenv("CC"); cc && *cc)
    candidates.push_back(cc);
  candidates.append({"cc", "clang-22", "clang", "gcc"});
  for (const std::string &name : candidates)
    if (auto path = llvm::sys::findProgramByName(name))
      return *path;
  return std::nullopt;
}

std::vector<std::string>
mlir::mod::getLinkArguments(const CompileOptions &options) {
  std::vector<std::string> args{"-lm"};
  std::vector<std::string> target = options.target == "cuda"
                                        ? cudaLinkArguments()
                                        : cpuLinkArguments();
  args.insert(args.end(), target.begin(), target.end());
  args.insert(args.end(), options.extraLinkArgs.begin(),
              options.extraLinkArgs.end());
  return args;
}

LogicalResult mlir::mod::linkSharedLibrary(StringRef object, StringRef output,
                                           const CompileOptions &options) {
  std::optional<std::string> driver = findLinker(options);
  if (!driver) {
    llvm::errs() << options.toolName
                 << ": error: no C compiler driver found to link model.so "
                    "(set --linker or $CC)\n";
    return failure();
  }
  std::vector<std::string> extra = getLinkArguments(options);
  SmallVector<StringRef> args{*driver, "-shared", "-o", output, object};
  // A CPU model also gets its buffer allocator, compiled from C by the same
  // driver; the source sits next to the object and goes with it.
  SmallString<256> support;
  if (options.target != "cuda") {
    support = llvm::sys::path::parent_path(object);
    llvm::sys::path::append(support, "modc-cpu-support.c");
    std::error_code ec;
    llvm::raw_fd_ostream os(support, ec);
    if (!ec) {
      os << cpuSupportSource();
      os.close();
      ec = os.error();
    }
    if (ec) {
      llvm::errs() << options.toolName << ": error: cannot write " << support
                   << ": " << ec.message() << "\n";
      return failure();
    }
    args.append({support, "-O2", "-fPIC"});
  }
  llvm::scope_exit removeSupport([&] {
    if (!support.empty() && !options.keepIntermediates)
      (void)llvm::sys::fs::remove(support);
  });
  args.append(extra.begin(), extra.end());
  if (options.verbose) {
    llvm::errs() << options.toolName << ": linking:";
    for (StringRef arg : args)
      llvm::errs() << " " << arg;
    llvm::errs() << "\n";
  }
  std::string error;
  int rc = llvm::sys::ExecuteAndWait(*driver, args, std::nullopt, {}, 0, 0,
                                     &error);
  if (rc != 0) {
    llvm::errs() << options.toolName << ": error: linking model.so failed ("
                 << *driver << " exited with " << rc
                 << (error.empty() ? "" : ": ") << error << ")\n";
    return failure();
  }
  return success();
}
