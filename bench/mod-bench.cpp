//===- mod-bench.cpp - time compiled models' entry points -----------------===//
//
// mod-bench NAME=DIR:ENTRY [NAME=DIR:ENTRY ...] [--iters=N] [--warmup=N]
//           [--ratio=A/B ...]
//
// Loads each model directory (mod-compile output), fills every input with
// deterministic pseudo-random data (integer inputs with values in [0, 8) so
// index-like inputs stay valid; an integer input named "positions" holds
// 0, 1, ..., S-1 along its last dim, as a prompt's positions do, since the
// CPU's causal attention skips the masked keys only for increasing
// positions), calls the entry point --warmup times, then
// --iters times, and prints the median, min and max wall time per call and
// the median process CPU time per call (all threads: on a shared machine it
// moves less with the load than wall time does).
// Each --ratio=A/B prints median(A) / median(B). A call is synchronous (the
// generated code waits for its stream before returning), so wall time is the
// model's time including its entry-point host <-> device copies.
//
//===----------------------------------------------------------------------===//

#include "modrt/Model.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {
struct Case {
  std::string name, dir, entry;
  double median = 0, min = 0, max = 0;
  double cpuMedian = 0; // process CPU time (all threads) per call, ms
};

double processCPUMilliseconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

[[noreturn]] void usage(const std::string &why) {
  std::fprintf(stderr,
               "mod-bench: %s\nusage: mod-bench NAME=DIR:ENTRY ... "
               "[--iters=N] [--warmup=N] [--ratio=A/B ...]\n",
               why.c_str());
  std::exit(2);
}

modrt::Tensor randomTensor(const modrt::TensorSpec &spec, std::mt19937 &rng) {
  modrt::Tensor t(spec.dtype, spec.shape);
  size_t n = t.byteSize() / modrt::dtypeSize(spec.dtype);
  std::uniform_real_distribution<float> real(-1.0f, 1.0f);
  std::uniform_int_distribution<int32_t> small(0, 7);
  for (size_t i = 0; i < n; ++i) {
    switch (spec.dtype) {
    case modrt::DType::F32: t.data<float>()[i] = real(rng); break;
    case modrt::DType::F64: t.data<double>()[i] = real(rng); break;
    case modrt::DType::I32: t.data<int32_t>()[i] = small(rng); break;
    case modrt::DType::I64: t.data<int64_t>()[i] = small(rng); break;
    default: usage("unsupported input dtype in " + spec.name);
    }
  }
  if (spec.name == "positions" && !spec.shape.empty() &&
      (spec.dtype == modrt::DType::I32 || spec.dtype == modrt::DType::I64)) {
    int64_t seq = spec.shape.back();
    for (size_t i = 0; i < n; ++i) {
      if (spec.dtype == modrt::DType::I32)
        t.data<int32_t>()[i] = static_cast<int32_t>(i % seq);
      else
        t.data<int64_t>()[i] = static_cast<int64_t>(i % seq);
    }
  }
  return t;
}

void run(Case &c, int warmup, int iters) {
  modrt::Model model = modrt::Model::load(c.dir);
  const modrt::EntryPoint &entry = model.entry(c.entry);
  std::mt19937 rng(1234);
  std::vector<modrt::Tensor> inputs;
  for (const modrt::TensorSpec &spec : entry.inputs)
    inputs.push_back(randomTensor(spec, rng));
  std::vector<const modrt::Tensor *> args;
  for (const modrt::Tensor &t : inputs)
    args.push_back(&t);
  // A CUDA model's parameters live on the device (uploaded once per load,
  // as mod-run and mod-train do), so the timed calls do not copy them.
  // Inputs an output updates in place stay host tensors: call() copies
  // them for every call.
  for (size_t i = 0; i < entry.inputs.size(); ++i) {
    bool updated = false;
    for (const modrt::TensorSpec &out : entry.outputs)
      updated |= out.aliasOf == i;
    if (entry.inputs[i].deviceResident && !updated) {
      model.upload(entry.inputs[i].name, inputs[i]);
      args[i] = nullptr;
    }
  }
  for (int i = 0; i < warmup; ++i)
    model.call(c.entry, args);
  std::vector<double> ms, cpu;
  for (int i = 0; i < iters; ++i) {
    double cpuStart = processCPUMilliseconds();
    auto start = std::chrono::steady_clock::now();
    model.call(c.entry, args);
    auto stop = std::chrono::steady_clock::now();
    cpu.push_back(processCPUMilliseconds() - cpuStart);
    ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  std::sort(ms.begin(), ms.end());
  std::sort(cpu.begin(), cpu.end());
  c.cpuMedian = cpu[cpu.size() / 2];
  c.median = ms[ms.size() / 2];
  c.min = ms.front();
  c.max = ms.back();
}
} // namespace

int main(int argc, char **argv) {
  std::vector<Case> cases;
  std::vector<std::pair<std::string, std::string>> ratios;
  int iters = 50, warmup = 5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--iters=", 0) == 0)
      iters = std::atoi(a.c_str() + 8);
    else if (a.rfind("--warmup=", 0) == 0)
      warmup = std::atoi(a.c_str() + 9);
    else if (a.rfind("--ratio=", 0) == 0) {
      std::string r = a.substr(8);
      size_t slash = r.find('/');
      if (slash == std::string::npos)
        usage("--ratio needs A/B");
      ratios.push_back({r.substr(0, slash), r.substr(slash + 1)});
    } else {
      size_t eq = a.find('='), colon = a.rfind(':');
      if (eq == std::string::npos || colon == std::string::npos || colon < eq)
        usage("bad case '" + a + "'");
      cases.push_back({a.substr(0, eq), a.substr(eq + 1, colon - eq - 1),
                       a.substr(colon + 1)});
    }
  }
  if (cases.empty() || iters < 1 || warmup < 0)
    usage("nothing to run");
  std::map<std::string, double> medians;
  try {
    for (Case &c : cases) {
      run(c, warmup, iters);
      medians[c.name] = c.median;
      std::printf("%-24s median %10.4f ms   min %10.4f   max %10.4f   (%d calls)"
                  "   cpu median %10.4f ms\n",
                  c.name.c_str(), c.median, c.min, c.max, iters, c.cpuMedian);
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "mod-bench: error: %s\n", e.what());
    return 1;
  }
  for (auto &[a, b] : ratios) {
    if (!medians.count(a) || !medians.count(b))
      usage("--ratio names an unknown case: " + a + "/" + b);
    std::printf("ratio %s / %s = %.3f (medians)\n", a.c_str(), b.c_str(),
                medians[a] / medians[b]);
  }
  return 0;
}
