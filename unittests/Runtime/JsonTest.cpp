//===- JsonTest.cpp - modrt::Json parser and writer -----------------------===//

#include "modrt/Json.h"
#include "TestUtil.h"

#include <cmath>
#include <limits>

using modrt::Json;
using modrt::test::throwsError;

namespace {

TEST(JsonTest, ParsesScalars) {
  EXPECT_TRUE(Json::parse("null").isNull());
  EXPECT_EQ(Json::parse("true").asBool(), true);
  EXPECT_EQ(Json::parse(" false ").asBool(), false);
  EXPECT_EQ(Json::parse("0").asInt(), 0);
  EXPECT_EQ(Json::parse("-17").asInt(), -17);
  EXPECT_EQ(Json::parse("1.5").asDouble(), 1.5);
  EXPECT_EQ(Json::parse("-2.5e3").asDouble(), -2500.0);
  EXPECT_EQ(Json::parse("1E-2").asDouble(), 0.01);
  EXPECT_FALSE(Json::parse("1.0").isInteger());
  EXPECT_EQ(Json::parse("\"hi\"").asString(), "hi");
}

TEST(JsonTest, KeepsLargeIntegersExact) {
  // 2^62 + 1 is not representable as a double.
  Json big = Json::parse("4611686018427387905");
  ASSERT_TRUE(big.isInteger());
  EXPECT_EQ(big.asInt(), 4611686018427387905LL);
  EXPECT_EQ(Json::parse("-9223372036854775808").asInt(),
            std::numeric_limits<int64_t>::min());
  // Up to 2^64 - 1 integers stay exact as unsigned values.
  Json max = Json::parse("18446744073709551615");
  EXPECT_FALSE(max.isInteger());
  ASSERT_TRUE(max.isUnsigned64());
  EXPECT_EQ(max.asUint64(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(Json::parse("9223372036854775809").asUint64(),
            (uint64_t(1) << 63) + 1);
  EXPECT_TRUE(throwsError([&] { max.asInt(); },
                          {"18446744073709551615", "does not fit"}));
  EXPECT_EQ(Json::parse("7").asUint64(), 7u);
  EXPECT_TRUE(throwsError([] { Json::parse("-1").asUint64(); }, {"negative"}));
  EXPECT_TRUE(throwsError([] { Json::parse("1e3").asUint64(); },
                          {"not an integer"}));
  // Beyond uint64 the value is still a number, just not an integer.
  Json huge = Json::parse("18446744073709551616");
  EXPECT_FALSE(huge.isInteger());
  EXPECT_FALSE(huge.isUnsigned64());
  EXPECT_EQ(huge.asDouble(), 18446744073709551616.0);
  EXPECT_TRUE(throwsError([&] { huge.asInt(); }, {"not an integer"}));
  // Exact integers survive a round trip.
  EXPECT_EQ(max.dump(), "18446744073709551615");
  EXPECT_EQ(Json::parse(max.dump()), max);
  EXPECT_NE(Json::parse("9223372036854775807"), max);
}

TEST(JsonTest, ParsesStringEscapes) {
  EXPECT_EQ(Json::parse(R"("a\"b\\c\/d\b\f\n\r\t")").asString(),
            "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(Json::parse(R"("\u0041\u00e9\u20ac")").asString(),
            "A\xC3\xA9\xE2\x82\xAC");
  // A surrogate pair becomes one 4-byte UTF-8 sequence (U+1F600).
  EXPECT_EQ(Json::parse(R"("\ud83d\ude00")").asString(), "\xF0\x9F\x98\x80");
  EXPECT_EQ(Json::parse("\"\xE2\x82\xAC\"").asString(), "\xE2\x82\xAC");
}

TEST(JsonTest, ParsesContainers) {
  Json doc = Json::parse(R"({"b": [1, 2.5, "x", null, {"c": []}], "a": {}})");
  ASSERT_TRUE(doc.isObject());
  EXPECT_EQ(doc.asObject().size(), 2u);
  const Json *b = doc.find("b");
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(b->asArray().size(), 5u);
  EXPECT_EQ(b->asArray()[0].asInt(), 1);
  EXPECT_EQ(b->asArray()[2].asString(), "x");
  EXPECT_TRUE(b->asArray()[4].find("c")->asArray().empty());
  EXPECT_EQ(doc.find("missing"), nullptr);
  EXPECT_TRUE(doc.find("a")->asObject().empty());
}

TEST(JsonTest, TypedAccessorsRejectOtherKinds) {
  EXPECT_TRUE(throwsError([] { Json::parse("1").asString(); },
                          {"number", "expected a string"}));
  EXPECT_TRUE(throwsError([] { Json::parse("[]").asObject(); },
                          {"array", "expected a object"}));
  EXPECT_TRUE(throwsError([] { Json::parse("\"1\"").asInt(); }, {"string"}));
}

TEST(JsonTest, RejectsMalformedInput) {
  const char *bad[] = {
      "",           "   ",        "{",          "}",          "[1,]",
      "[1 2]",      "{\"a\":1,}", "{\"a\" 1}",  "{1: 2}",     "{'a': 1}",
      "01",         "-01",        "1.",         ".5",         "-",
      "1e",         "+1",         "0x10",       "tru",        "nul",
      "NaN",        "Infinity",   "\"abc",      "\"\\x\"",    "\"\\u12\"",
      "\"\\u12G4\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
      "\"a\nb\"",   "\"\xFF\"",   "\"\xC0\xAF\"", "\"\xED\xA0\x80\"",
      "[1] x",      "{} {}",      "1e999",      "// c\n1",    "[1,,2]",
  };
  for (const char *text : bad)
    EXPECT_TRUE(throwsError([&] { Json::parse(text); }, {"JSON parse error"}))
        << "input: " << text;
}

TEST(JsonTest, ErrorsNameTheByteOffset) {
  EXPECT_TRUE(throwsError([] { Json::parse("[1,]"); },
                          {"at byte 3", "line 1, column 4"}));
  EXPECT_TRUE(throwsError([] { Json::parse("{\"a\": 1} x"); },
                          {"at byte 9", "expected end of input"}));
  EXPECT_TRUE(throwsError([] { Json::parse("{\n\"a\": tru}"); },
                          {"at byte 10", "line 2, column 9"}));
  // nlohmann/json stops at a NUL byte as if the input ended there; JSON text
  // never holds one, so the parser refuses it wherever it is.
  EXPECT_TRUE(throwsError([] { Json::parse(std::string("{}\0", 3)); },
                          {"at byte 2", "NUL"}));
  EXPECT_TRUE(throwsError(
      [] { Json::parse(std::string("{\"a\": 1}\0{\"b\": 2}", 17)); },
      {"at byte 8", "NUL"}));
}

TEST(JsonTest, RejectsDuplicateKeys) {
  EXPECT_TRUE(throwsError([] { Json::parse(R"({"k": 1, "k": 2})"); },
                          {"duplicate key \"k\" in the object at the top level"}));
  // Keys are compared after unescaping.
  EXPECT_TRUE(throwsError([] { Json::parse(R"({"k": 1, "\u006b": 2})"); },
                          {"duplicate key \"k\""}));
  // The error names the object by its JSON pointer.
  EXPECT_TRUE(throwsError(
      [] { Json::parse(R"({"a": [{}, {"x/y": {"n": 1, "n": 1}}]})"); },
      {"duplicate key \"n\" in the object at /a/1/x~1y"}));
  // The same key in different objects is fine.
  EXPECT_NO_THROW(Json::parse(R"({"a": {"k": 1}, "b": {"k": 1}, "k": 0})"));
}

TEST(JsonTest, LimitsNestingDepth) {
  std::string deep(200, '[');
  deep += std::string(200, ']');
  EXPECT_TRUE(throwsError([&] { Json::parse(deep); }, {"nesting deeper"}));
  EXPECT_NO_THROW(Json::parse(deep, 200));
  // Far deeper than any stack could take if recursion were unbounded.
  std::string hostile(1000000, '[');
  EXPECT_TRUE(throwsError([&] { Json::parse(hostile); }, {"nesting deeper"}));
}

TEST(JsonTest, SerializesCompactly) {
  Json::Object object;
  object.emplace("z", Json(Json::Array{Json(1), Json(2.5), Json(nullptr),
                                       Json(true), Json("s")}));
  object.emplace("a", Json(int64_t(-9007199254740993LL)));
  EXPECT_EQ(Json(object).dump(),
            R"({"a":-9007199254740993,"z":[1,2.5,null,true,"s"]})");
  EXPECT_EQ(Json(Json::Array{}).dump(), "[]");
  EXPECT_EQ(Json(Json::Object{}).dump(), "{}");
  EXPECT_EQ(Json(0.1).dump(), "0.1");
  EXPECT_EQ(Json(uint64_t(1) << 63).dump(), "9223372036854775808");
}

TEST(JsonTest, SerializesPretty) {
  Json doc = Json::parse(R"({"a": [1, 2], "b": {}})");
  EXPECT_EQ(doc.dump(2), "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}");
}

TEST(JsonTest, EscapesStrings) {
  EXPECT_EQ(Json(std::string("q\"\\\n\x01\x7F\xC3\xA9")).dump(),
            "\"q\\\"\\\\\\n\\u0001\x7F\xC3\xA9\"");
  EXPECT_TRUE(throwsError([] { Json(std::string("\xFF")).dump(); },
                          {"invalid UTF-8"}));
}

TEST(JsonTest, RefusesNonFiniteNumbers) {
  EXPECT_TRUE(throwsError([] { Json(std::nan("")).dump(); }, {"NaN"}));
  EXPECT_TRUE(throwsError(
      [] { Json(std::numeric_limits<double>::infinity()).dump(); }, {"NaN"}));
}

TEST(JsonTest, RoundTrips) {
  const char *text =
      R"({"__metadata__":{"format":"pt"},"w":{"data_offsets":[0,24],)"
      R"("dtype":"F32","shape":[2,3]},"x":[-1.25e-07,1e+300,"\u0001\ud83d\ude00"]})";
  Json doc = Json::parse(text);
  Json again = Json::parse(doc.dump());
  EXPECT_EQ(doc, again);
  EXPECT_EQ(Json::parse(doc.dump(4)), doc);
  EXPECT_NE(doc, Json::parse("{}"));
}

} // namespace
