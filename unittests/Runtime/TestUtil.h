//===- TestUtil.h - Helpers shared by the runtime unit tests ----*- C++ -*-===//

#ifndef MODRT_UNITTESTS_TESTUTIL_H
#define MODRT_UNITTESTS_TESTUTIL_H

#include "modrt/Error.h"
#include "modrt/Sha256.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <iterator>
#include <string>
#include <vector>

namespace modrt::test {

/// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class TempDir {
public:
  TempDir() {
    const char *base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") +
                          "/modrt-test-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (!mkdtemp(buffer.data())) throw std::runtime_error("mkdtemp failed");
    path_ = buffer.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  const std::string &path() const { return path_; }
  std::string file(const std::string &name) const { return path_ + "/" + name; }

  /// Names of the directory's entries, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto &entry : std::filesystem::directory_iterator(path_))
      names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

private:
  std::string path_;
};

inline void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

inline std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// Succeeds when `fn` throws modrt::Error whose message contains every word.
template <typename Fn>
::testing::AssertionResult throwsError(Fn &&fn,
                                       const std::vector<std::string> &words) {
  try {
    fn();
  } catch (const modrt::Error &e) {
    std::string message = e.what();
    for (const std::string &word : words)
      if (message.find(word) == std::string::npos)
        return ::testing::AssertionFailure()
               << "error message \"" << message << "\" lacks \"" << word << "\"";
    return ::testing::AssertionSuccess() << message;
  } catch (const std::exception &e) {
    return ::testing::AssertionFailure()
           << "threw a non-modrt exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

/// Manifest for the entry points of modrt_test_model (TestModel.c).
inline const char kTestManifest[] = R"({
  "format": "modc-manifest", "version": 1, "target": "cpu", "library": "model.so",
  "entry_points": [
    {"name": "add", "symbol": "_modrt_add",
     "inputs":  [{"name": "a", "dtype": "f32", "shape": [2, 3]},
                 {"name": "b", "dtype": "f32", "shape": [2, 3]}],
     "outputs": [{"name": "sum", "dtype": "f32", "shape": [2, 3]}]},
    {"name": "sum", "symbol": "_modrt_sum",
     "inputs":  [{"name": "x", "dtype": "f32", "shape": [2, 3]}],
     "outputs": [{"name": "total", "dtype": "f32", "shape": []}]},
    {"name": "iota", "symbol": "_modrt_iota", "inputs": [],
     "outputs": [{"name": "values", "dtype": "i64", "shape": [4]}]}]
})";

/// Fills the directory `dir` with a copy of `library` as model.so and with
/// `manifest` as manifest.json, adding the copy's "library_sha256" (which
/// Model::load requires) after the manifest's "library" key.
inline void writeModelDirectory(const std::string &dir, std::string manifest,
                                const std::string &library) {
  // A new inode every time: the library is linked with -z nodelete (LLVM's
  // default for shared libraries), so an earlier load stays mapped, and
  // rewriting that file in place would corrupt the mapping.
  std::filesystem::remove(dir + "/model.so");
  std::filesystem::copy_file(library, dir + "/model.so");
  const std::string key = R"("library": "model.so")";
  size_t at = manifest.find(key);
  if (at == std::string::npos)
    throw std::runtime_error("test manifest lacks " + key);
  manifest.insert(at + key.size(), R"(, "library_sha256": ")" +
                                       modrt::Sha256::hex(readFile(dir + "/model.so")) +
                                       "\"");
  writeFile(dir + "/manifest.json", manifest);
}

/// Fills `dir` with manifest.json and a copy of the test model library.
inline void writeTestModel(const TempDir &dir, const std::string &manifest = kTestManifest) {
  writeModelDirectory(dir.path(), manifest, MODRT_TEST_MODEL_LIBRARY);
}

} // namespace modrt::test

#endif // MODRT_UNITTESTS_TESTUTIL_H
