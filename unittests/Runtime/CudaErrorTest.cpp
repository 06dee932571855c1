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

const char kResidentManifest[] = R"({
  "format": "modc-manifest", "version": 1, "target": "cuda", "library": "model.so",
  "entry_points": [
    {"name": "resident", "symbol": "_modrt_resident",
     "inputs": [{"name": "w", "dtype": "f32", "shape": [4], "kind": "parameter",
                 "init": "zeros", "residency": "device"}],
     "outputs": [{"name": "y", "dtype": "f32", "shape": [4]}]},
    {"name": "update", "symbol": "_modrt_update",
     "inputs": [{"name": "w", "dtype": "f32", "shape": [4], "residency": "device"}],
     "outputs": [{"name": "w", "dtype": "f32", "shape": [4], "alias_of": "w",
                  "residency": "device"}]},
    {"name": "produce", "symbol": "_modrt_produce", "inputs": [],
     "outputs": [{"name": "g", "dtype": "f32", "shape": [4], "residency": "device"}]},
    {"name": "consume", "symbol": "_modrt_consume",
     "inputs": [{"name": "g", "dtype": "f32", "shape": [4], "residency": "device"}],
     "outputs": [{"name": "y", "dtype": "f32", "shape": [4]}]}]
})";

std::vector<float> values(const Tensor &t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numElements());
}

TEST(CudaErrorTest, DeviceResidentTensors) {
  TempDir dir;
  modrt::test::writeModelDirectory(dir.path(), kResidentManifest,
                                   MODRT_CUDA_ERROR_TEST_MODEL_LIBRARY);
  Model model = Model::load(dir.path());
  EXPECT_TRUE(model.isDeviceResident("w"));
  EXPECT_FALSE(model.isDeviceResident("y"));
  EXPECT_FALSE(model.hasDeviceBuffer("w"));
  // Checked before any CUDA call: the name, the dtype and shape, and that a
  // device buffer exists before a call relies on it.
  EXPECT_TRUE(throwsError([&] { model.upload("y", Tensor(DType::F32, {4})); },
                          {"no device-resident tensor 'y'"}));
  EXPECT_TRUE(throwsError([&] { model.upload("w", Tensor(DType::F32, {5})); },
                          {"'w' must be f32[4], got f32[5]"}));
  EXPECT_TRUE(throwsError([&] { model.call("resident", {nullptr}); },
                          {"input 0 ('w') is device-resident and was never "
                           "uploaded"}));
  EXPECT_TRUE(throwsError([&] { model.download("w"); },
                          {"'w' was never uploaded"}));
  Tensor w = Tensor::fromValues<float>(DType::F32, {4}, {1, 2, 3, 4});
  char why[256];
  if (modrt_cuda_device_count(why, sizeof why) <= 0) {
    // No GPU: the upload reports why, as a call would.
    EXPECT_TRUE(throwsError([&] { model.upload("w", w); },
                            {"uploading 'w'", "CUDA error"}));
    EXPECT_TRUE(throwsError([&] { model.call("resident", {&w}); },
                            {"entry point 'resident'", "CUDA error"}));
    return;
  }
  model.upload("w", w);
  EXPECT_TRUE(model.hasDeviceBuffer("w"));
  // The resident buffer, uploaded once, read by two calls.
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(values(model.call("resident", {nullptr}).at(0)),
              (std::vector<float>{1, 2, 3, 4}));
  // A host tensor for a resident input goes through a temporary buffer and
  // leaves the resident one alone.
  Tensor other = Tensor::fromValues<float>(DType::F32, {4}, {9, 9, 9, 9});
  EXPECT_EQ(values(model.call("resident", {&other}).at(0)),
            (std::vector<float>{9, 9, 9, 9}));
  EXPECT_EQ(values(model.download("w")), (std::vector<float>{1, 2, 3, 4}));
  // call() must not change an input: an in-place output of the device
  // buffer needs callInPlace.
  EXPECT_TRUE(throwsError([&] { model.call("update", {nullptr}); },
                          {"use callInPlace"}));
  // In place on the device: nothing comes back, the buffer changed.
  EXPECT_TRUE(model.callInPlace("update", {nullptr}).empty());
  EXPECT_EQ(values(model.download("w")), (std::vector<float>{5, 6, 7, 8}));
  // In place on a host tensor: copied in and back out.
  Tensor host = Tensor::fromValues<float>(DType::F32, {4}, {0, 0, 0, 0});
  model.callInPlace("update", {&host});
  EXPECT_EQ(values(host), (std::vector<float>{5, 6, 7, 8}));
}

TEST(CudaErrorTest, DeviceResidentOutputPassedToAnotherEntryPoint) {
  TempDir dir;
  modrt::test::writeModelDirectory(dir.path(), kResidentManifest,
                                   MODRT_CUDA_ERROR_TEST_MODEL_LIBRARY);
  Model model = Model::load(dir.path());
  // Written by @produce, read by @consume (gradients from @loss_and_grad to
  // @adamw_step): one device buffer, allocated by the first call that
  // writes it.
  EXPECT_TRUE(model.isDeviceResident("g"));
  EXPECT_FALSE(model.hasDeviceBuffer("g"));
  EXPECT_TRUE(throwsError([&] { model.call("consume", {nullptr}); },
                          {"input 0 ('g') is device-resident and was never "
                           "uploaded"}));
  char why[256];
  if (modrt_cuda_device_count(why, sizeof why) <= 0) {
    EXPECT_TRUE(throwsError([&] { model.callInPlace("produce", {}, true); },
                            {"entry point 'produce'", "allocating 'g'",
                             "CUDA error"}));
    return;
  }
  // Kept on the device: an empty placeholder comes back.
  std::vector<Tensor> kept = model.callInPlace("produce", {}, true);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].numElements(), 0);
  EXPECT_TRUE(model.hasDeviceBuffer("g"));
  EXPECT_EQ(values(model.download("g")), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(values(model.call("consume", {nullptr}).at(0)),
            (std::vector<float>{1, 2, 3, 4}));
  // call() (and callInPlace without keepOnDevice) also copy it to the host.
  model.upload("g", Tensor::fromValues<float>(DType::F32, {4}, {0, 0, 0, 0}));
  EXPECT_EQ(values(model.call("produce", {}).at(0)),
            (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(values(model.download("g")), (std::vector<float>{1, 2, 3, 4}));
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
