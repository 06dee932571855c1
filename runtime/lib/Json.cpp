//===- Json.cpp - Minimal strict JSON value, parser and writer ------------===//

#include "modrt/Json.h"

#include <charconv>
#include <cmath>
#include <limits>

using namespace modrt;

Json::Json(uint64_t v) : kind_(Kind::Number), double_(double(v)) {
  if (v <= uint64_t(std::numeric_limits<int64_t>::max())) {
    isInt_ = true;
    int_ = int64_t(v);
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
  if (!isInteger())
    throw Error(kind_ == Kind::Number ? "JSON number is not an integer"
                                      : kindError(Kind::Number, kind_).what());
  return int_;
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

static void appendUtf8(std::string &out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

//===----------------------------------------------------------------------===//
// Parser
//===----------------------------------------------------------------------===//

namespace {
class Parser {
public:
  Parser(std::string_view text, unsigned maxDepth)
      : text_(text), maxDepth_(maxDepth) {}

  Json parseDocument() {
    skipWhitespace();
    Json value = parseValue(0);
    skipWhitespace();
    if (pos_ != text_.size()) fail("unexpected trailing characters");
    return value;
  }

private:
  [[noreturn]] void fail(const std::string &what) const {
    throw Error("JSON parse error at byte " + std::to_string(pos_) + ": " +
                what);
  }

  bool atEnd() const { return pos_ >= text_.size(); }
  char peek() const { return atEnd() ? '\0' : text_[pos_]; }

  void skipWhitespace() {
    while (!atEnd()) {
      char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  void expectLiteral(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) fail("invalid literal");
    pos_ += word.size();
  }

  Json parseValue(unsigned depth) {
    if (atEnd()) fail("unexpected end of input, expected a value");
    switch (peek()) {
    case '{': return parseObject(depth + 1);
    case '[': return parseArray(depth + 1);
    case '"': return Json(parseString());
    case 't': expectLiteral("true"); return Json(true);
    case 'f': expectLiteral("false"); return Json(false);
    case 'n': expectLiteral("null"); return Json();
    default:
      if (peek() == '-' || (peek() >= '0' && peek() <= '9'))
        return parseNumber();
      fail(std::string("unexpected character '") + peek() + "'");
    }
  }

  void checkDepth(unsigned depth) {
    if (depth > maxDepth_)
      fail("nesting deeper than " + std::to_string(maxDepth_) + " levels");
  }

  Json parseObject(unsigned depth) {
    checkDepth(depth);
    ++pos_; // '{'
    Json::Object members;
    skipWhitespace();
    if (peek() == '}') { ++pos_; return Json(std::move(members)); }
    while (true) {
      skipWhitespace();
      if (peek() != '"') fail("expected a string key");
      size_t keyPos = pos_;
      std::string key = parseString();
      skipWhitespace();
      if (peek() != ':') fail("expected ':' after object key");
      ++pos_;
      skipWhitespace();
      Json value = parseValue(depth);
      if (!members.emplace(key, std::move(value)).second) {
        pos_ = keyPos;
        fail("duplicate key \"" + key + "\"");
      }
      skipWhitespace();
      if (peek() == ',') { ++pos_; continue; }
      if (peek() == '}') { ++pos_; return Json(std::move(members)); }
      fail("expected ',' or '}' in object");
    }
  }

  Json parseArray(unsigned depth) {
    checkDepth(depth);
    ++pos_; // '['
    Json::Array items;
    skipWhitespace();
    if (peek() == ']') { ++pos_; return Json(std::move(items)); }
    while (true) {
      skipWhitespace();
      items.push_back(parseValue(depth));
      skipWhitespace();
      if (peek() == ',') { ++pos_; continue; }
      if (peek() == ']') { ++pos_; return Json(std::move(items)); }
      fail("expected ',' or ']' in array");
    }
  }

  uint32_t parseHex4() {
    if (text_.size() - pos_ < 4) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = text_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= uint32_t(c - 'A' + 10);
      else { --pos_; fail("invalid hex digit in \\u escape"); }
    }
    return v;
  }

  std::string parseString() {
    ++pos_; // opening quote
    std::string out;
    while (true) {
      if (atEnd()) fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') { ++pos_; return out; }
      if (c < 0x20) fail("unescaped control character in string");
      if (c == '\\') {
        ++pos_;
        if (atEnd()) fail("unterminated string");
        char e = text_[pos_++];
        switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = parseHex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail("unpaired low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (text_.substr(pos_, 2) != "\\u") fail("unpaired high surrogate");
            pos_ += 2;
            uint32_t low = parseHex4();
            if (low < 0xDC00 || low > 0xDFFF) fail("invalid low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          appendUtf8(out, cp);
          break;
        }
        default:
          --pos_;
          fail(std::string("invalid escape '\\") + e + "'");
        }
        continue;
      }
      size_t len = utf8SequenceLength(text_, pos_);
      if (len == 0) fail("invalid UTF-8 in string");
      out.append(text_.data() + pos_, len);
      pos_ += len;
    }
  }

  Json parseNumber() {
    size_t start = pos_;
    auto digits = [&] {
      size_t n = 0;
      while (!atEnd() && peek() >= '0' && peek() <= '9') { ++pos_; ++n; }
      return n;
    };
    bool integral = true;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
      if (peek() >= '0' && peek() <= '9') fail("leading zeros are not allowed");
    } else if (digits() == 0) {
      fail("expected digits");
    }
    if (peek() == '.') {
      integral = false;
      ++pos_;
      if (digits() == 0) fail("expected digits after '.'");
    }
    if (peek() == 'e' || peek() == 'E') {
      integral = false;
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (digits() == 0) fail("expected digits in exponent");
    }
    const char *first = text_.data() + start;
    const char *last = text_.data() + pos_;
    if (integral) {
      int64_t v = 0;
      auto [ptr, ec] = std::from_chars(first, last, v);
      if (ec == std::errc() && ptr == last) return Json(v);
      // Out of int64 range: fall through and keep it as a double.
    }
    double d = 0;
    auto [ptr, ec] = std::from_chars(first, last, d);
    if (ec == std::errc::result_out_of_range || (ec == std::errc() && std::isinf(d))) {
      pos_ = start;
      fail("number out of range");
    }
    if (ec != std::errc() || ptr != last) {
      pos_ = start;
      fail("invalid number");
    }
    return Json(d);
  }

  std::string_view text_;
  unsigned maxDepth_;
  size_t pos_ = 0;
};
} // namespace

Json Json::parse(std::string_view text, unsigned maxDepth) {
  return Parser(text, maxDepth).parseDocument();
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
