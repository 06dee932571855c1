//===- ManifestFuzzer.cpp - libFuzzer target: JSON and manifest parsers ---===//
//
// Arbitrary text through libmodrt's JSON parser and Manifest::parse. Both
// must either accept or throw modrt::Error; a manifest they accept must keep
// its promises (entry points with well-formed tensor specs), and a JSON
// value they accept must re-serialize to a document that parses equal.
//
//===----------------------------------------------------------------------===//

#include "modrt/Json.h"
#include "modrt/Manifest.h"
#include "modrt/Model.h"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view text(reinterpret_cast<const char *>(data), size);
  try {
    modrt::Json value = modrt::Json::parse(text);
    std::string dumped;
    try {
      dumped = value.dump();
    } catch (const modrt::Error &) {
      return 0; // e.g. a number that does not print back as JSON
    }
    if (modrt::Json::parse(dumped) != value)
      std::abort();
  } catch (const modrt::Error &) {
  }
  try {
    modrt::Manifest manifest = modrt::Manifest::parse(text, "fuzz.json");
    if (manifest.entryPoints.empty())
      std::abort();
    for (const modrt::EntryPoint &entry : manifest.entryPoints) {
      for (const auto *specs : {&entry.inputs, &entry.outputs})
        for (const modrt::TensorSpec &spec : *specs)
          for (int64_t dim : spec.shape)
            if (dim < 0)
              std::abort();
      // The signature the loader compares against must be computable.
      (void)modrt::entrySignature(entry);
    }
  } catch (const modrt::Error &) {
  }
  return 0;
}
