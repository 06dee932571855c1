//===- Json.h - JSON value, strict parser and writer ------------*- C++ -*-===//
//
// Just enough JSON for safetensors headers and modc manifests. Parsing is
// done by nlohmann/json (Debian's nlohmann-json3-dev, header-only; only
// Json.cpp includes it, so users of libmodrt do not need it): strict RFC 8259
// (no comments, no trailing commas, no NaN, valid UTF-8, nothing but
// whitespace after the value). On top of it this file rejects duplicate
// object keys (a duplicated tensor name must not silently shadow another)
// and bounds the nesting depth so hostile input cannot exhaust the stack.
//
// Integers are kept exactly over the whole int64 and uint64 range:
// safetensors byte offsets can exceed 2^53, where a double would round them,
// and seeds are any uint64.
//
//===----------------------------------------------------------------------===//

#ifndef MODRT_JSON_H
#define MODRT_JSON_H

#include "modrt/Error.h"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace modrt {

class Json {
public:
  enum class Kind { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<Json>;
  /// Keys are kept sorted, which also makes serialization deterministic.
  using Object = std::map<std::string, Json, std::less<>>;

  Json() = default; // null
  Json(std::nullptr_t) {}
  Json(bool b) : kind_(Kind::Bool), bool_(b) {}
  Json(int v) : Json(static_cast<int64_t>(v)) {}
  Json(int64_t v) : kind_(Kind::Number), isInt_(true), int_(v), double_(double(v)) {}
  Json(uint64_t v);
  Json(double v) : kind_(Kind::Number), double_(v) {}
  Json(const char *s) : kind_(Kind::String), string_(s) {}
  Json(std::string s) : kind_(Kind::String), string_(std::move(s)) {}
  Json(std::string_view s) : kind_(Kind::String), string_(s) {}
  Json(Array a) : kind_(Kind::Array), array_(std::move(a)) {}
  Json(Object o) : kind_(Kind::Object), object_(std::move(o)) {}

  Kind kind() const { return kind_; }
  bool isNull() const { return kind_ == Kind::Null; }
  bool isBool() const { return kind_ == Kind::Bool; }
  bool isNumber() const { return kind_ == Kind::Number; }
  /// True for numbers written without fraction or exponent that fit int64.
  bool isInteger() const { return kind_ == Kind::Number && isInt_; }
  /// True for numbers written without fraction or exponent in
  /// [0, 2^64 - 1] (every non-negative isInteger() value, and more).
  bool isUnsigned64() const {
    return kind_ == Kind::Number && (isUint_ || (isInt_ && int_ >= 0));
  }
  bool isString() const { return kind_ == Kind::String; }
  bool isArray() const { return kind_ == Kind::Array; }
  bool isObject() const { return kind_ == Kind::Object; }

  /// Typed accessors; they throw Error when the value has another kind.
  bool asBool() const;
  int64_t asInt() const;
  /// The exact value of an isUnsigned64() number.
  uint64_t asUint64() const;
  double asDouble() const;
  const std::string &asString() const;
  const Array &asArray() const;
  Array &asArray();
  const Object &asObject() const;
  Object &asObject();

  /// Object member lookup; nullptr when absent or when this is no object.
  const Json *find(std::string_view key) const;

  /// Parses a complete document. Syntax errors name the byte offset (and
  /// line and column) of the problem, duplicate keys the object they are in
  /// (as a JSON pointer, e.g. "/entry_points/0").
  static Json parse(std::string_view text, unsigned maxDepth = 128);

  /// Serializes to compact JSON (indent < 0) or pretty-printed JSON with the
  /// given indent width. Throws Error for NaN/infinity and invalid UTF-8.
  std::string dump(int indent = -1) const;

  static const char *kindName(Kind kind);

  friend bool operator==(const Json &a, const Json &b);
  friend bool operator!=(const Json &a, const Json &b) { return !(a == b); }

private:
  void dumpTo(std::string &out, int indent, int level) const;

  Kind kind_ = Kind::Null;
  bool bool_ = false;
  bool isInt_ = false;
  /// Integers above INT64_MAX; isInt_ is then false.
  bool isUint_ = false;
  int64_t int_ = 0;
  uint64_t uint_ = 0;
  double double_ = 0.0;
  std::string string_;
  Array array_;
  Object object_;
};

/// Structural equality; integers and doubles compare by value.
bool operator==(const Json &a, const Json &b);

} // namespace modrt

#endif // MODRT_JSON_H
