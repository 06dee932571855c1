//===- Sha256Test.cpp - SHA-256 against the FIPS 180-4 test vectors -------===//

#include "modrt/Sha256.h"
#include "TestUtil.h"

#include <fcntl.h>
#include <unistd.h>

using namespace modrt;

namespace {

TEST(Sha256Test, StandardVectors) {
  // FIPS 180-4 / NIST CAVP examples.
  EXPECT_EQ(Sha256::hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256::hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256::hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                        "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(Sha256::hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, PaddingBoundaries) {
  // Messages of 55, 56 and 64 bytes need one, two and two padding blocks.
  EXPECT_EQ(Sha256::hex(std::string(55, 'a')),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(Sha256::hex(std::string(56, 'a')),
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(Sha256::hex(std::string(64, 'a')),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

TEST(Sha256Test, IncrementalUpdatesMatchOneShot) {
  std::string message;
  for (int i = 0; i < 300; ++i) message.push_back(char(i * 7 + 3));
  const std::string expected = Sha256::hex(message);
  for (size_t split = 0; split <= message.size(); split += 13) {
    Sha256 hash;
    hash.update(std::string_view(message).substr(0, split));
    hash.update(std::string_view(message).substr(split));
    EXPECT_EQ(Sha256::toHex(hash.finish()), expected) << split;
  }
}

TEST(Sha256Test, HashesFiles) {
  test::TempDir dir;
  std::string bytes(200000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = char(i % 251);
  test::writeFile(dir.file("f"), bytes);
  int fd = ::open(dir.file("f").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(sha256OfFile(fd, dir.file("f")), Sha256::hex(bytes));
  ::close(fd);
  EXPECT_TRUE(test::throwsError([&] { sha256OfFile(-1, "nowhere"); },
                                {"nowhere", "read failed"}));
}

} // namespace
