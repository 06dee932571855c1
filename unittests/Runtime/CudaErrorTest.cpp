//===- CudaErrorTest.cpp - CUDA errors reach the caller, not exit() -------===//
//
// Uses modrt_cuda_error_test_model (CudaErrorTestModel.c), which links
// libmodrt_cuda and provokes a CUDA error on any machine: without a GPU the
// driver cannot be used, with one the copy reads an unallocated address.
//
//===----------------------------------------------------------------------===//

#include "modrt/Model.h"
#include "modrt/cuda/Runtime.h"
#include "TestUtil.h"

#include <cstdlib>
#include <filesystem>

using namespace modrt;
using modrt::test::TempDir;
using modrt::test::throwsError;
using modrt::test::writeFile;

namespace {

const char kManifest[] = R"({
  "format": "modc-manifest", "version": 1, "target": "cuda", "library": "model.so",
  "entry_points": [
    {"name": "forward", "symbol": "_modrt_forward", "inputs": [],
     "outputs": [{"name": "y", "dtype": "f32", "shape": [4]}]}]
})";

void writeModel(const TempDir &dir) {
  modrt::test::writeModelDirectory(dir.path(), kManifest,
                                   MODRT_CUDA_ERROR_TEST_MODEL_LIBRARY);
}

TEST(CudaErrorTest, EntryPointThrowsWithTheCudaErrorAndTheProcessLives) {
  TempDir dir;
  writeModel(dir);
  Model model = Model::load(dir.path());
  char why[256];
  bool gpu = modrt_cuda_device_count(why, sizeof why) > 0;
  // With a GPU the first failing call is the copy; without one, the first
  // call that needs the driver.
  std::vector<std::string> words = {"entry point 'forward'", "CUDA error"};
  if (gpu)
    words.push_back("CUDA_ERROR_");
  EXPECT_TRUE(throwsError([&] { model.call("forward", {}); }, words));
  // The error was taken: nothing is pending now, and the next call reports
  // its own error again rather than a stale one or none.
  char message[256];
  EXPECT_EQ(modrt_cuda_take_error(message, sizeof message), 0);
  EXPECT_TRUE(throwsError([&] { model.call("forward", {}); }, words));
}

TEST(CudaErrorTest, TakeErrorTruncatesAndClears) {
  // Without a pending error nothing is written.
  char message[8] = "unset";
  EXPECT_EQ(modrt_cuda_take_error(message, sizeof message), 0);
  EXPECT_STREQ(message, "unset");
  char why[256];
  if (modrt_cuda_device_count(why, sizeof why) > 0)
    mgpuMemcpy(nullptr, reinterpret_cast<void *>(0x10), 16, nullptr);
  else
    mgpuStreamCreate();
  ASSERT_EQ(modrt_cuda_take_error(message, sizeof message), 1);
  EXPECT_EQ(std::string(message).size(), sizeof message - 1);
  EXPECT_EQ(modrt_cuda_take_error(message, sizeof message), 0);
}

} // namespace
