//===- mod-decode-check.cpp - logits of prefill + decode steps ------------===//
//
// Test driver of --mod-generate-decode: runs a model's @prefill on the first
// prompt-lengths[b] tokens of each sequence, then @decode_step with the
// sequence's following tokens (teacher forcing) until every sequence has
// all S tokens, and writes the logits of every position, [B,S,V], as if one
// forward pass had computed them. The numerical tests compare them with the
// compiled forward and the C++ reference.
//
//   mod-decode-check MODEL-DIR --weights=FILE --inputs=FILE
//                    --prompt-lengths=P0,P1,... [--extra-steps=N]
//                    [--print-routing] [--routed-masks] -o FILE
//
// --inputs holds `tokens` i32 [B,S] (positions are 0..S-1). --extra-steps
// runs N more steps after the last token (to exercise a full cache).
// --print-routing prints, for an MoD model, how many tokens of each prompt
// each routed block took at prefill and which rows it took at each decode
// step (from the routed lengths the entry points return). --routed-masks
// also writes, per routed block, `routed_mask.<prefix>` i32 [B,S]: 1 where
// the token went through the block. A decode step's tokens are read from
// the routed lengths it returns; a prompt token t from the routed lengths of
// an extra @prefill of the prompt's first t+1 tokens minus those of its
// first t (prefill routes causally, so a prefix routes as in the full
// prompt). The masks compare exactly with mod-reference --routed-masks.
//
//===----------------------------------------------------------------------===//

#include "modrt/Decode.h"
#include "modrt/Error.h"
#include "modrt/Model.h"
#include "modrt/Safetensors.h"
#include "modrt/Weights.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <iostream>
#include <string>
#include <vector>

using namespace modrt;

namespace {
[[noreturn]] void usage(const std::string &why) {
  throw Error(why + "\nusage: mod-decode-check MODEL-DIR --weights=FILE "
                    "--inputs=FILE --prompt-lengths=P0,P1,... "
                    "[--extra-steps=N] [--print-routing] [--routed-masks] "
                    "-o FILE");
}

std::vector<int64_t> parseList(const std::string &text) {
  std::vector<int64_t> values;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception &) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 1)
      usage("--prompt-lengths must list positive integers, got '" + text + "'");
    values.push_back(v);
    start = end + 1;
  }
  return values;
}
} // namespace

int main(int argc, char **argv) {
  try {
    std::string dir, weights, inputs, output, lengthsText;
    int64_t extraSteps = 0;
    bool printRouting = false, routedMasks = false;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto value = [&](const char *flag, std::string &out) {
        std::string prefix = std::string(flag) + "=";
        if (a.rfind(prefix, 0) != 0) return false;
        out = a.substr(prefix.size());
        return true;
      };
      std::string v;
      if (a == "-o" && i + 1 < argc)
        output = argv[++i];
      else if (value("--weights", weights) || value("--inputs", inputs) ||
               value("--prompt-lengths", lengthsText))
        continue;
      else if (a == "--print-routing")
        printRouting = true;
      else if (a == "--routed-masks")
        routedMasks = true;
      else if (value("--extra-steps", v))
        extraSteps = std::stoll(v);
      else if (a.rfind("-", 0) != 0 && dir.empty())
        dir = a;
      else
        usage("unexpected argument '" + a + "'");
    }
    if (dir.empty() || weights.empty() || inputs.empty() || output.empty() ||
        lengthsText.empty())
      usage("missing arguments");

    Model model = Model::load(dir);
    const EntryPoint &prefillEntry = model.entry("prefill");
    std::map<std::string, Tensor> params =
        loadParameters(prefillEntry, weights, /*initMissing=*/false, 0);
    Decoder decoder(model, params);

    SafetensorsFile in = readSafetensors(inputs);
    auto it = in.tensors.find("tokens");
    if (it == in.tensors.end() || it->second.dtype() != DType::I32 ||
        it->second.rank() != 2)
      usage(inputs + " must hold tokens i32 [B,S]");
    const Tensor &tokens = it->second;
    const int64_t b = tokens.shape()[0], s = tokens.shape()[1];
    const int64_t v = decoder.vocabSize();
    std::vector<int64_t> promptLengths = parseList(lengthsText);
    if (int64_t(promptLengths.size()) != b || b != decoder.batch())
      usage("--prompt-lengths needs one length per sequence of the batch (" +
            std::to_string(decoder.batch()) + ")");

    std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(b));
    for (int64_t r = 0; r < b; ++r) {
      if (promptLengths[size_t(r)] > s)
        usage("a prompt length exceeds the sequence length " + std::to_string(s));
      prompts[size_t(r)].assign(tokens.data<int32_t>() + r * s,
                                tokens.data<int32_t>() + r * s +
                                    promptLengths[size_t(r)]);
    }
    Tensor logits(DType::F32, {b, s, v});
    std::map<std::string, Tensor> masks;
    if (routedMasks) {
      if (decoder.routedBlocks().empty())
        usage("--routed-masks needs a model with routed blocks");
      for (const std::string &block : decoder.routedBlocks())
        masks.emplace(block, Tensor(DType::I32, {b, s}));
      // The prompt tokens: prefill of every prefix length.
      int64_t maxPrompt = *std::max_element(promptLengths.begin(), promptLengths.end());
      std::map<std::string, std::vector<int32_t>> before;
      for (const std::string &block : decoder.routedBlocks())
        before[block].assign(size_t(b), 0);
      for (int64_t t = 0; t < maxPrompt; ++t) {
        std::vector<std::vector<int32_t>> prefixes(static_cast<size_t>(b));
        for (int64_t r = 0; r < b; ++r)
          prefixes[size_t(r)].assign(
              prompts[size_t(r)].begin(),
              prompts[size_t(r)].begin() +
                  std::min<int64_t>(t + 1, promptLengths[size_t(r)]));
        (void)decoder.prefill(prefixes);
        for (const std::string &block : decoder.routedBlocks())
          for (int64_t r = 0; r < b; ++r) {
            int32_t now = decoder.routedLength(block, size_t(r));
            if (t < promptLengths[size_t(r)])
              masks.at(block).data<int32_t>()[r * s + t] =
                  now - before[block][size_t(r)];
            before[block][size_t(r)] = now;
          }
      }
    }
    Tensor first = decoder.prefill(prompts);
    if (printRouting)
      for (const std::string &block : decoder.routedBlocks()) {
        std::cout << "prefill " << block << ":";
        for (int64_t r = 0; r < b; ++r)
          std::cout << " " << decoder.routedLength(block, size_t(r)) << "/"
                    << promptLengths[size_t(r)];
        std::cout << "\n";
      }
    const int64_t p = decoder.prefillLen();
    for (int64_t r = 0; r < b; ++r)
      std::memcpy(logits.data<float>() + r * s * v,
                  first.data<float>() + r * p * v,
                  size_t(promptLengths[size_t(r)] * v) * sizeof(float));
    int64_t minPrompt = *std::min_element(promptLengths.begin(), promptLengths.end());
    for (int64_t n = 0; n < s - minPrompt + extraSteps; ++n) {
      std::vector<int32_t> next(size_t(b), 0);
      for (int64_t r = 0; r < b; ++r) {
        int64_t at = promptLengths[size_t(r)] + n;
        if (at < s) next[size_t(r)] = tokens.data<int32_t>()[r * s + at];
      }
      std::map<std::string, std::vector<int32_t>> before;
      for (const std::string &block : decoder.routedBlocks())
        for (int64_t r = 0; r < b; ++r)
          before[block].push_back(decoder.routedLength(block, size_t(r)));
      Tensor stepLogits = decoder.step(next);
      for (auto &[block, mask] : masks)
        for (int64_t r = 0; r < b; ++r) {
          int64_t at = promptLengths[size_t(r)] + n;
          if (at < s)
            mask.data<int32_t>()[r * s + at] =
                decoder.routedLength(block, size_t(r)) - before[block][size_t(r)];
        }
      if (printRouting)
        for (const std::string &block : decoder.routedBlocks()) {
          int64_t routedRows = 0;
          std::string rows;
          for (int64_t r = 0; r < b; ++r)
            if (decoder.routedLength(block, size_t(r)) != before[block][size_t(r)]) {
              ++routedRows;
              rows += " " + std::to_string(r);
            }
          std::cout << "step " << n << " " << block << ": " << routedRows
                    << " of " << b << " rows routed" << (rows.empty() ? "" : ":")
                    << rows << "\n";
        }
      for (int64_t r = 0; r < b; ++r) {
        int64_t at = promptLengths[size_t(r)] + n;
        if (at < s)
          std::memcpy(logits.data<float>() + (r * s + at) * v,
                      stepLogits.data<float>() + r * v, size_t(v) * sizeof(float));
      }
    }
    std::map<std::string, Tensor> outputs;
    outputs.emplace("logits", std::move(logits));
    for (auto &[block, mask] : masks)
      outputs.emplace("routed_mask." + block, std::move(mask));
    writeSafetensors(output, outputs);
    return 0;
  } catch (const std::exception &e) {
    std::cerr << "mod-decode-check: error: " << e.what() << "\n";
    return 1;
  }
}
