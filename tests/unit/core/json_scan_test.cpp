#include "core/error.hpp"
#include "core/json_scan.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace json = switchyard::core::json;

TEST(JsonScan, AcceptsValidDocuments) {
  for (std::string doc : {R"({})", R"([])", R"({"a":[1,2.5,-3e10,true,false,null,"x"]})",
                          " \n{\"k\" : { \"n\" : [ ] } }\t", R"("\u00e9\n\"")", "0", "-0.0e+1",
                          "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\""}) {
    EXPECT_TRUE(json::validate(doc, 64)) << doc;
  }
}

TEST(JsonScan, RejectsSyntaxErrorsWithOffset) {
  struct Case {
    std::string doc;
    std::size_t offset;
  };
  for (const Case& c : std::vector<Case>{{R"({"a":1,})", 7}, {R"({"a" 1})", 5}, {"[1,2", 4},
                                         {R"({"a":01})", 6}, {R"({"a":tru})", 5}, {"{} x", 3},
                                         {"{'a':1}", 1}, {"[1.]", 3}, {"\"a\tb\"", 2},
                                         {R"("\x")", 1}}) {
    auto r = json::validate(c.doc, 64);
    EXPECT_EQ(r.error, json::ScanError::syntax) << c.doc;
    EXPECT_EQ(r.offset, c.offset) << c.doc;
  }
  EXPECT_EQ(json::validate("  ", 64).error, json::ScanError::empty);
}

TEST(JsonScan, EnforcesDepth) {
  std::string deep(65, '[');
  deep += std::string(65, ']');
  EXPECT_EQ(json::validate(deep, 64).error, json::ScanError::depth);
  std::string ok(64, '[');
  ok += std::string(64, ']');
  EXPECT_TRUE(json::validate(ok, 64));
  // Objects count as well as arrays.
  EXPECT_EQ(json::validate(R"({"a":{"b":{"c":1}}})", 2).error, json::ScanError::depth);
  EXPECT_TRUE(json::validate(R"({"a":{"b":{"c":1}}})", 3));
}

TEST(JsonScan, RejectsInvalidUtf8) {
  for (std::string bad : {"\"\xff\"", "\"\xc3\"", "\"\xc0\xaf\"" /* overlong */,
                          "\"\xed\xa0\x80\"" /* surrogate */, "\"\xf4\x90\x80\x80\"" /* > U+10FFFF */,
                          "\"\xe2\x82\""}) {
    EXPECT_EQ(json::validate(bad, 64).error, json::ScanError::utf8);
  }
}

TEST(JsonScan, WalksMembersWithSpans) {
  std::string doc = R"( {"model" : "gpt", "n": [1, {"x": "}"}], "s\"k": null} )";
  auto r = json::validate(doc, 64);
  ASSERT_TRUE(r);
  std::vector<std::string> keys, raws;
  json::for_each_member(r.root, [&](std::string_view k, const json::Value& v) {
    keys.emplace_back(k);
    raws.emplace_back(v.raw);
    EXPECT_EQ(doc.substr(v.offset, v.raw.size()), v.raw);
    return true;
  });
  EXPECT_EQ(keys, (std::vector<std::string>{"model", "n", "s\\\"k"}));
  EXPECT_EQ(raws, (std::vector<std::string>{"\"gpt\"", R"([1, {"x": "}"}])", "null"}));
}

TEST(JsonScan, UnescapesStrings) {
  EXPECT_EQ(json::unescape(R"("a\nb\"c\\d\/e")"), "a\nb\"c\\d/e");
  EXPECT_EQ(json::unescape(R"("\u00e9\u20ac")"), "\xc3\xa9\xe2\x82\xac");
  EXPECT_EQ(json::unescape(R"("\ud83d\ude00")"), "\xf0\x9f\x98\x80");
  EXPECT_EQ(json::unescape(R"("\ud83d")"), "\xef\xbf\xbd");  // lone surrogate → U+FFFD
}

TEST(JsonScan, ReadsNumbers) {
  auto r = json::validate("[42, 1e3, 2.5, -7]", 4);
  ASSERT_TRUE(r);
  std::vector<json::Value> v;
  json::for_each_element(r.root, [&](const json::Value& e) {
    v.push_back(e);
    return true;
  });
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(json::as_int(v[0]), 42);
  EXPECT_EQ(json::as_int(v[1]), 1000);
  EXPECT_FALSE(json::as_int(v[2]).has_value());
  EXPECT_DOUBLE_EQ(*json::as_double(v[2]), 2.5);
  EXPECT_EQ(json::as_int(v[3]), -7);
}

TEST(JsonScan, HugeNumbersAreNotIntegers) {
  // Found by the fuzzer: 1e30 cast to int64 was undefined behaviour.
  auto r = json::validate("[1e30, -1e300, 9.3e18]", 4);
  ASSERT_TRUE(r);
  json::for_each_element(r.root, [&](const json::Value& e) {
    EXPECT_FALSE(json::as_int(e).has_value()) << e.raw;
    return true;
  });
}

TEST(JsonScan, TapeRecordsValuesDownToADepth) {
  std::string doc = R"({"a": [1, {"k": "v", "deep": {"x": [2]}}], "b": "s\"", "c": {}})";
  json::Tape tape;
  ASSERT_TRUE(json::validate(doc, 64, tape, 2));
  std::vector<std::string> seen;
  tape.for_each_child(doc, 0, [&](std::string_view key, const json::Value& v, std::size_t i) {
    seen.push_back(std::string(key) + "=" + std::string(v.raw));
    if (key == "a") {
      tape.for_each_child(doc, i, [&](std::string_view k, const json::Value& e, std::size_t) {
        EXPECT_TRUE(k.empty());
        seen.push_back("[" + std::string(e.raw) + "]");
        return true;
      });
    }
    return true;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{R"(a=[1, {"k": "v", "deep": {"x": [2]}}])", "[1]",
                                            R"([{"k": "v", "deep": {"x": [2]}}])", R"(b="s\"")",
                                            "c={}"}));
  // Depth 2 is the array's elements; the members of the object inside are not recorded, and no
  // key of theirs leaks onto a later element.
  for (std::size_t i = 0; i < tape.size(); ++i) EXPECT_LE(tape[i].depth, 2u);
}

TEST(AppendJsonString, EscapesWhatJsonRequiresAndKeepsTheRest) {
  using switchyard::core::append_json_string;
  std::string out;
  append_json_string(out, "plain");
  EXPECT_EQ(out, "\"plain\"");
  out.clear();
  // Escapes at every position around the 16-byte steps, UTF-8 kept as it is.
  std::string text = "0123456789abcde\"0123456789abcdef\\\n\t\x01 é ü 漢字 \r\b\f end";
  append_json_string(out, text);
  EXPECT_EQ(out, "\"0123456789abcde\\\"0123456789abcdef\\\\\\n\\t\\u0001 é ü 漢字 \\r\\b\\f end\"");
  // What it writes parses back to the input.
  for (std::size_t n = 0; n < 64; ++n) {
    std::string s(n, 'x');
    if (n > 3) s[n / 2] = '"';
    if (n > 5) s[n - 2] = '\x1f';
    std::string quoted;
    append_json_string(quoted, s);
    EXPECT_EQ(switchyard::core::json::unescape(quoted), s) << n;
  }
}

TEST(JsonScan, TapeSaysWhetherAnyKeyHoldsAnEscape) {
  json::Tape tape;
  ASSERT_TRUE(json::validate(R"({"a": "x\"y", "b": {"c\n": 1}})", 64, tape, 1));
  EXPECT_TRUE(tape.escaped_keys());  // a key below the recorded depth counts too
  ASSERT_TRUE(json::validate(R"({"a": "x\"y\u00e9", "b": ["\\"]})", 64, tape, 3));
  EXPECT_FALSE(tape.escaped_keys());  // escapes in values do not
  ASSERT_TRUE(json::validate(R"({"mod\u0065l": "m"})", 64, tape, 1));
  EXPECT_TRUE(tape.escaped_keys());
}
