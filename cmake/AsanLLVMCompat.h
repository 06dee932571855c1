// Force-included (-include) into every C++ file that is compiled with
// AddressSanitizer: the sanitizer build (-DMODC_SANITIZE=ON) and the fuzz
// targets. See "Fuzzing and sanitizers" in README.md.
//
// LLVM's headers assume that LLVM itself was built with ASan whenever the
// including file is: llvm/Support/Compiler.h then maps
// __asan_poison_memory_region / __asan_unpoison_memory_region to the ASan
// runtime, and BumpPtrAllocator's inline code poisons each new slab and
// unpoisons each piece it hands out. Debian's libLLVM/libMLIR are not built
// with ASan, so their copies of the same inline code do neither. The two
// share allocators (an MLIRContext's StorageUniquer): a slab that our
// instrumented code started (poisoned) is handed out piece by piece by
// libMLIR without unpoisoning, and the next access reports a
// use-after-poison that is not a bug. Seen as a memmove inside
// mlir::FileLineColRange::get while mod-compile parsed
// test/Integration/CPU/mlp-block.mlir; ASAN_OPTIONS=poison_history_size=4096
// shows the poisoning frame:
//
//   Memory was manually poisoned by thread T0:
//     #0 __asan_poison_memory_region
//     #1 llvm::BumpPtrAllocatorImpl<...>::StartNewSlab() Allocator.h:351
//     #2 llvm::BumpPtrAllocatorImpl<...>::AllocateSlow(...) Allocator.h:203
//     ...
//     #8 mlir::mod::detail::GateKindAttrStorage::construct(...) MoDAttrs.cpp.inc
//
// So, as in the uninstrumented libraries, the allocator annotations are
// no-ops here. Only these two functions are affected: the heap, stack and
// global checks (and any other instrumentation) stay on.
// (ASan's suppression files cannot express this: they match interceptor
// reports only, and the same false report can come from an instrumented load.)
#ifndef MODC_ASAN_LLVM_COMPAT_H
#define MODC_ASAN_LLVM_COMPAT_H
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
// Declares the functions first, so the include in llvm/Support/Compiler.h
// adds nothing and the macros below are not expanded in declarations.
#include <sanitizer/asan_interface.h>
#define __asan_poison_memory_region(addr, size) ((void)(addr), (void)(size))
#define __asan_unpoison_memory_region(addr, size) ((void)(addr), (void)(size))
#endif
#endif
#endif // MODC_ASAN_LLVM_COMPAT_H
