//===- Json.cpp - JSON value, strict parser and writer --------------------===//

#include "modrt/Json.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <limits>

using namespace modrt;

Json::Json(uint64_t v) : kind_(Kind::Number), double_(double(v)) {
  if (v <= uint64_t(std::numeric_limits<int64_t>::max())) {
    isInt_ = true;
    int_ = int64_t(v);
  } else {
    isUint_ = true;
    uint_ = v;
  }
}

const char *Json::kindName(Kind kind) {
  switch (kind) {
  case Kind::Null: return "null";
  case Kind::Bool: return "boolean";
  case Kind::Number: return "number";
  case Kind::String: return "string";
  case Kind::Array: return "array";
  case Kind::Object: return "object";
  }
  return "?";
}

static Error kindError(Json::Kind want, Json::Kind have) {
  return Error(std::string("JSON value is a ") + Json::kindName(have) +
               ", expected a " + Json::kindName(want));
}

bool Json::asBool() const {
  if (kind_ != Kind::Bool) throw kindError(Kind::Bool, kind_);
  return bool_;
}
int64_t Json::asInt() const {
  if (isUint_)
    throw Error("JSON integer " + std::to_string(uint_) +
                " does not fit in a signed 64-bit integer");
  if (!isInteger())
    throw Error(kind_ == Kind::Number ? "JSON number is not an integer"
                                      : kindError(Kind::Number, kind_).what());
  return int_;
}
uint64_t Json::asUint64() const {
  if (isUint_) return uint_;
  if (isInt_ && int_ >= 0) return uint64_t(int_);
  throw Error(kind_ != Kind::Number ? kindError(Kind::Number, kind_).what()
              : isInt_ ? "JSON integer " + std::to_string(int_) +
                             " is negative, expected one in [0, 2^64-1]"
                       : std::string("JSON number is not an integer"));
}
double Json::asDouble() const {
  if (kind_ != Kind::Number) throw kindError(Kind::Number, kind_);
  return double_;
}
const std::string &Json::asString() const {
  if (kind_ != Kind::String) throw kindError(Kind::String, kind_);
  return string_;
}
const Json::Array &Json::asArray() const {
  if (kind_ != Kind::Array) throw kindError(Kind::Array, kind_);
  return array_;
}
Json::Array &Json::asArray() {
  if (kind_ != Kind::Array) throw kindError(Kind::Array, kind_);
  return array_;
}
const Json::Object &Json::asObject() const {
  if (kind_ != Kind::Object) throw kindError(Kind::Object, kind_);
  return object_;
}
Json::Object &Json::asObject() {
  if (kind_ != Kind::Object) throw kindError(Kind::Object, kind_);
  return object_;
}

const Json *Json::find(std::string_view key) const {
  if (kind_ != Kind::Object) return nullptr;
  auto it = object_.find(key);
  return it == object_.end() ? nullptr : &it->second;
}

bool modrt::operator==(const Json &a, const Json &b) {
  if (a.kind_ != b.kind_) return false;
  switch (a.kind_) {
  case Json::Kind::Null: return true;
  case Json::Kind::Bool: return a.bool_ == b.bool_;
  case Json::Kind::Number:
    if (a.isInt_ && b.isInt_) return a.int_ == b.int_;
    if (a.isUint_ && b.isUint_) return a.uint_ == b.uint_;
    // An integer that fits int64 and one that does not differ.
    if ((a.isInt_ || a.isUint_) && (b.isInt_ || b.isUint_)) return false;
    return a.double_ == b.double_;
  case Json::Kind::String: return a.string_ == b.string_;
  case Json::Kind::Array: return a.array_ == b.array_;
  case Json::Kind::Object: return a.object_ == b.object_;
  }
  return false;
}

//===----------------------------------------------------------------------===//
// UTF-8
//===----------------------------------------------------------------------===//

/// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid
/// (overlong forms, surrogates and code points above U+10FFFF are invalid).
static size_t utf8SequenceLength(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
  else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
  else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
  else return 0;
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static const uint32_t minForLen[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < minForLen[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

//===----------------------------------------------------------------------===//
// Parser
//===----------------------------------------------------------------------===//

namespace {
/// Builds a Json from nlohmann's SAX events. nlohmann's parser is iterative
/// and strict; this adds the depth bound (the values built here are
/// destroyed recursively) and rejects duplicate keys, which nlohmann would
/// resolve as last-wins.
class Builder {
public:
  explicit Builder(unsigned maxDepth) : maxDepth_(maxDepth) {}

  bool null() { return add(Json()); }
  bool boolean(bool v) { return add(Json(v)); }
  bool number_integer(int64_t v) { return add(Json(v)); }
  bool number_unsigned(uint64_t v) { return add(Json(v)); }
  bool number_float(double v, const std::string &) { return add(Json(v)); }
  bool string(std::string &v) { return add(Json(std::move(v))); }
  bool binary(nlohmann::json::binary_t &) {
    return fail("binary values are not JSON");
  }
  bool start_object(std::size_t) { return open(Json(Json::Object{})); }
  bool start_array(std::size_t) { return open(Json(Json::Array{})); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(std::string &key) {
    Frame &top = stack_.back();
    if (top.value.asObject().count(key))
      return fail("duplicate key \"" + key + "\" in the object at " +
                  pointer());
    top.key = std::move(key);
    return true;
  }
  bool parse_error(std::size_t position, const std::string &,
                   const nlohmann::detail::exception &e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 4:
    // syntax error ..." -> "line 1, column 4: syntax error ...".
    std::string what = e.what();
    size_t bracket = what.find("] ");
    if (bracket != std::string::npos) what.erase(0, bracket + 2);
    for (const char *prefix : {"parse error at ", "parse error: "})
      if (what.rfind(prefix, 0) == 0) what.erase(0, std::string(prefix).size());
    // `position` counts the characters read, including the offending one.
    error_ = "JSON parse error at byte " +
             std::to_string(position ? position - 1 : 0) + ": " + what;
    return false;
  }

  Json take() { return std::move(root_); }
  const std::string &error() const { return error_; }

private:
  struct Frame {
    Json value;
    std::string key; // the pending key, in an object
  };

  bool fail(std::string what) {
    error_ = "JSON parse error: " + std::move(what);
    return false;
  }

  bool add(Json v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return true;
    }
    Frame &top = stack_.back();
    if (top.value.isArray())
      top.value.asArray().push_back(std::move(v));
    else
      top.value.asObject().emplace(std::move(top.key), std::move(v));
    return true;
  }

  bool open(Json container) {
    if (stack_.size() >= maxDepth_)
      return fail("nesting deeper than " + std::to_string(maxDepth_) +
                  " levels");
    stack_.push_back({std::move(container), {}});
    return true;
  }

  bool close() {
    Json done = std::move(stack_.back().value);
    stack_.pop_back();
    return add(std::move(done));
  }

  /// JSON pointer (RFC 6901) of the innermost open container.
  std::string pointer() const {
    if (stack_.size() == 1) return "the top level";
    std::string out;
    for (size_t i = 0; i + 1 < stack_.size(); ++i) {
      const Frame &f = stack_[i];
      out += '/';
      if (f.value.isArray()) {
        out += std::to_string(f.value.asArray().size());
        continue;
      }
      for (char c : f.key) {
        if (c == '~') out += "~0";
        else if (c == '/') out += "~1";
        else out += c;
      }
    }
    return out;
  }

  unsigned maxDepth_;
  std::vector<Frame> stack_;
  Json root_;
  std::string error_;
};
} // namespace

Json Json::parse(std::string_view text, unsigned maxDepth) {
  // nlohmann/json takes a NUL byte for the end of the input, so "{}\0junk"
  // would parse. JSON text never holds one (not even inside strings).
  if (size_t nul = text.find('\0'); nul != std::string_view::npos)
    throw Error("JSON parse error at byte " + std::to_string(nul) +
                ": NUL byte (JSON text never holds one)");
  Builder builder(maxDepth);
  bool ok = nlohmann::json::sax_parse(
      text.data(), text.data() + text.size(), &builder,
      nlohmann::json::input_format_t::json, /*strict=*/true,
      /*ignore_comments=*/false);
  if (!ok)
    throw Error(builder.error().empty() ? "JSON parse error" : builder.error());
  return builder.take();
}

//===----------------------------------------------------------------------===//
// Writer
//===----------------------------------------------------------------------===//

static void dumpString(std::string &out, std::string_view s) {
  static const char hex[] = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
    case '"': out += "\\\""; ++i; continue;
    case '\\': out += "\\\\"; ++i; continue;
    case '\n': out += "\\n"; ++i; continue;
    case '\r': out += "\\r"; ++i; continue;
    case '\t': out += "\\t"; ++i; continue;
    case '\b': out += "\\b"; ++i; continue;
    case '\f': out += "\\f"; ++i; continue;
    default: break;
    }
    if (c < 0x20) {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 0xF];
      ++i;
      continue;
    }
    size_t len = utf8SequenceLength(s, i);
    if (len == 0)
      throw Error("cannot serialize string with invalid UTF-8 at byte " +
                  std::to_string(i));
    out.append(s.data() + i, len);
    i += len;
  }
  out += '"';
}

static void newline(std::string &out, int indent, int level) {
  if (indent < 0) return;
  out += '\n';
  out.append(size_t(indent) * size_t(level), ' ');
}

void Json::dumpTo(std::string &out, int indent, int level) const {
  switch (kind_) {
  case Kind::Null: out += "null"; return;
  case Kind::Bool: out += bool_ ? "true" : "false"; return;
  case Kind::Number: {
    char buf[32];
    std::to_chars_result r;
    if (isInt_) {
      r = std::to_chars(buf, buf + sizeof buf, int_);
    } else if (isUint_) {
      r = std::to_chars(buf, buf + sizeof buf, uint_);
    } else {
      if (!std::isfinite(double_))
        throw Error("cannot serialize NaN or infinity as JSON");
      // Shortest representation that round-trips exactly.
      r = std::to_chars(buf, buf + sizeof buf, double_);
    }
    out.append(buf, r.ptr);
    return;
  }
  case Kind::String: dumpString(out, string_); return;
  case Kind::Array: {
    out += '[';
    bool first = true;
    for (const Json &item : array_) {
      if (!first) out += ',';
      first = false;
      newline(out, indent, level + 1);
      item.dumpTo(out, indent, level + 1);
    }
    if (!array_.empty()) newline(out, indent, level);
    out += ']';
    return;
  }
  case Kind::Object: {
    out += '{';
    bool first = true;
    for (const auto &[key, value] : object_) {
      if (!first) out += ',';
      first = false;
      newline(out, indent, level + 1);
      dumpString(out, key);
      out += indent < 0 ? ":" : ": ";
      value.dumpTo(out, indent, level + 1);
    }
    if (!object_.empty()) newline(out, indent, level);
    out += '}';
    return;
  }
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  dumpTo(out, indent, 0);
  return out;
}
