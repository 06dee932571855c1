//===- mod-tokenize.cpp - Tokenize a text corpus once for training --------===//
//
// mod-tokenize [CORPUS...] -o tokens.bin [--tokenizer=byte|MODEL]
//              [--train-sentencepiece=VOCAB --sentencepiece-model=FILE]
//              [--val-fraction=F]
// mod-tokenize --info tokens.bin
// mod-tokenize --decode tokens.bin [--split=train|val] [--tokenizer=...]
//
// Reads the corpus (default: Debian's fortunes in /usr/share/games/fortunes),
// splits it into train and validation documents by a hash of their text,
// tokenizes it and writes the token file that mod-train memory-maps (format
// in modrt/TokenFile.h).
//
//===----------------------------------------------------------------------===//

#include "modrt/Error.h"
#include "modrt/FileUtil.h"
#include "modrt/TokenFile.h"
#include "modrt/Tokenizer.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace modrt;

namespace {

constexpr const char *kDefaultCorpus = "/usr/share/games/fortunes";
constexpr double kDefaultValFraction = 0.05;

const char kUsage[] =
    R"(usage: mod-tokenize [CORPUS...] -o TOKENS [options]
       mod-tokenize --info TOKENS
       mod-tokenize --decode TOKENS [--split=train|val] [--tokenizer=SPEC]

Tokenizes a text corpus once into a token file that mod-train memory-maps.
CORPUS is any number of text files or directories (walked recursively in
sorted order; hidden entries and files holding NUL bytes are skipped; a line
holding only '%' ends a document, as in fortune files). The default corpus is
Debian's fortunes package, )" "/usr/share/games/fortunes" R"(.

Each document goes to the validation split by a hash of its text, so the same
corpus always gives the same split and the same file.

Options:
  -o FILE                   Token file to write (replaced atomically).
  --tokenizer=SPEC          "byte" (default: UTF-8 bytes, vocabulary 256) or
                            the path of a SentencePiece .model file (e.g. a
                            LLaMA tokenizer.model).
  --train-sentencepiece=N   Train a SentencePiece model of N pieces (>= 300)
                            on the training documents first and tokenize with
                            it; it is written to --sentencepiece-model.
  --sentencepiece-model=F   Where --train-sentencepiece writes the model
                            (default: TOKENS with its extension replaced by
                            .model).
  --val-fraction=F          Fraction of documents held out for validation,
                            0 <= F < 1 (default 0.05).
  --threads=N               Threads for SentencePiece training (default: all
                            cores).
  --info                    Print the header of a token file.
  --decode                  Print the text of a token file's split (default
                            train) decoded with --tokenizer.
  --split=train|val         Split for --decode.
  --help                    Show this help.
)";

struct Options {
  std::vector<std::string> corpus;
  std::string output;
  std::string tokenizer = "byte";
  std::optional<uint32_t> trainVocab;
  std::string spmModel;
  double valFraction = kDefaultValFraction;
  unsigned threads = 0;
  std::string info, decode;
  Split split = Split::Train;
};

[[noreturn]] void usageError(const std::string &message) {
  throw Error(message + " (see mod-tokenize --help)");
}

uint64_t parseUnsigned(const std::string &option, const std::string &text,
                       uint64_t min, uint64_t max) {
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() ||
      value < min || value > max)
    usageError("invalid value '" + text + "' for " + option +
               ": expected an integer from " + std::to_string(min) + " to " +
               std::to_string(max));
  return value;
}

std::optional<Options> parseOptions(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const std::string &name) -> std::optional<std::string> {
      if (arg.rfind(name + "=", 0) == 0)
        return arg.substr(name.size() + 1);
      return std::nullopt;
    };
    if (arg == "--help" || arg == "-h")
      return std::nullopt;
    if (arg == "-o") {
      if (i + 1 >= argc)
        usageError("-o needs a file name");
      o.output = argv[++i];
    } else if (auto v = value("-o")) {
      o.output = *v;
    } else if (auto v = value("--tokenizer")) {
      o.tokenizer = *v;
    } else if (auto v = value("--train-sentencepiece")) {
      o.trainVocab = uint32_t(parseUnsigned("--train-sentencepiece", *v, 300, 1u << 20));
    } else if (auto v = value("--sentencepiece-model")) {
      o.spmModel = *v;
    } else if (auto v = value("--val-fraction")) {
      char *end = nullptr;
      o.valFraction = std::strtod(v->c_str(), &end);
      if (v->empty() || *end || !(o.valFraction >= 0 && o.valFraction < 1))
        usageError("invalid value '" + *v +
                   "' for --val-fraction: expected a number in [0, 1)");
    } else if (auto v = value("--threads")) {
      o.threads = unsigned(parseUnsigned("--threads", *v, 1, 1024));
    } else if (arg == "--info" || arg == "--decode") {
      if (i + 1 >= argc)
        usageError(arg + " needs a token file");
      (arg == "--info" ? o.info : o.decode) = argv[++i];
    } else if (auto v = value("--split")) {
      if (*v == "train")
        o.split = Split::Train;
      else if (*v == "val")
        o.split = Split::Validation;
      else
        usageError("invalid value '" + *v + "' for --split: expected train or val");
    } else if (arg.rfind("-", 0) == 0 && arg != "-") {
      usageError("unknown option '" + arg + "'");
    } else {
      o.corpus.push_back(arg);
    }
  }
  if (o.info.empty() && o.decode.empty() && o.output.empty())
    usageError("no output file: give -o TOKENS");
  if (o.trainVocab && o.tokenizer != "byte")
    usageError("--train-sentencepiece and --tokenizer=" + o.tokenizer +
               " exclude each other");
  return o;
}

int printInfo(const std::string &path) {
  TokenFile file = TokenFile::open(path);
  char fp[32];
  std::snprintf(fp, sizeof fp, "%016llx",
                static_cast<unsigned long long>(file.tokenizerFingerprint()));
  std::cout << path << ":\n"
            << "  vocabulary:   " << file.vocabSize() << " ("
            << file.tokenBytes() << "-byte tokens)\n"
            << "  tokenizer:    " << fp
            << (file.tokenizerFingerprint() == ByteTokenizer().fingerprint()
                    ? " (byte)"
                    : "")
            << "\n"
            << "  train:        " << file.size(Split::Train) << " tokens, "
            << file.documents(Split::Train) << " documents\n"
            << "  validation:   " << file.size(Split::Validation) << " tokens, "
            << file.documents(Split::Validation) << " documents\n";
  return 0;
}

int decode(const Options &o) {
  TokenFile file = TokenFile::open(o.decode);
  std::unique_ptr<Tokenizer> tokenizer = Tokenizer::open(o.tokenizer);
  file.requireTokenizer(*tokenizer);
  std::vector<uint32_t> ids(file.size(o.split));
  for (uint64_t i = 0; i < ids.size(); ++i)
    ids[i] = file.token(o.split, i);
  std::string text = tokenizer->decode(ids);
  std::cout.write(text.data(), std::streamsize(text.size()));
  std::cout.flush();
  if (!std::cout)
    throw Error("cannot write to standard output");
  return 0;
}

int tokenize(Options o) {
  if (o.corpus.empty())
    o.corpus.push_back(kDefaultCorpus);
  // A bad tokenizer fails before the corpus is read.
  std::unique_ptr<Tokenizer> tokenizer;
  if (!o.trainVocab)
    tokenizer = Tokenizer::open(o.tokenizer);
  std::vector<Document> documents = readCorpus(o.corpus);
  if (o.trainVocab) {
    std::string model = o.spmModel;
    if (model.empty()) {
      size_t slash = o.output.find_last_of('/');
      size_t dot = o.output.find_last_of('.');
      model = (dot != std::string::npos &&
               (slash == std::string::npos || dot > slash))
                  ? o.output.substr(0, dot)
                  : o.output;
      model += ".model";
    }
    std::vector<std::string> trainText;
    for (const Document &d : documents)
      if (!isValidationDocument(d.text, o.valFraction))
        trainText.push_back(d.text);
    unsigned threads = o.threads ? o.threads
                                 : std::max(1u, std::thread::hardware_concurrency());
    std::cerr << "mod-tokenize: training a SentencePiece model of "
              << *o.trainVocab << " pieces on " << trainText.size()
              << " documents -> " << model << "\n";
    SentencePieceTokenizer::train(trainText, *o.trainVocab, model, threads);
    tokenizer = SentencePieceTokenizer::load(model);
  }
  TokenFileStats stats =
      writeTokenFile(o.output, documents, *tokenizer, o.valFraction);
  std::cerr << "mod-tokenize: " << documents.size() << " documents -> "
            << stats.trainTokens << " training tokens (" << stats.trainDocuments
            << " documents), " << stats.valTokens << " validation tokens ("
            << stats.valDocuments << " documents), tokenizer "
            << tokenizer->describe() << " -> " << o.output << "\n";
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  try {
    std::optional<Options> options = parseOptions(argc, argv);
    if (!options) {
      std::cout << kUsage;
      return 0;
    }
    if (!options->info.empty())
      return printInfo(options->info);
    if (!options->decode.empty())
      return decode(*options);
    return tokenize(*options);
  } catch (const std::bad_alloc &) {
    std::cerr << "mod-tokenize: error: out of memory\n";
  } catch (const std::exception &e) {
    std::cerr << "mod-tokenize: error: " << e.what() << '\n';
  }
  return 1;
}
