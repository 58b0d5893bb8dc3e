// Driver for bench/tokens: prints switchyard::core::estimate_text_tokens and
// switchyard::core::quick_text_tokens for each input text.
//
//   estimate_main [--raw-json] [--only accurate|quick] [--bench N] [FILE]
//
// Input (FILE or stdin): JSONL, one {"text": "..."} object a line. Output: one line a text, the
// accurate estimate then the quick one ("218 224"); with --only, that estimator's alone.
// --raw-json estimates from the string content as it stands in the JSON line (escapes not
// decoded), as the gateway does when it has only the raw request bytes.
// --only runs one estimator, so that `valgrind --tool=callgrind` counts its instructions alone.
// --bench N estimates all texts N times over with each estimator, in several rounds, and prints
// the throughput to stderr instead.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/token_estimate.hpp"

namespace {

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | cp >> 6);
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | cp >> 12);
    out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | cp >> 18);
    out += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
    out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::uint32_t hex4(std::string_view s, std::size_t i) {
  std::uint32_t v = 0;
  for (std::size_t j = i; j < i + 4 && j < s.size(); ++j) {
    char c = s[j];
    v = v << 4 | static_cast<std::uint32_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return v;
}

// The JSON string starting after the opening quote at `pos`: raw content and decoded text.
bool read_string(std::string_view line, std::size_t pos, std::string_view& raw, std::string& text) {
  text.clear();
  std::size_t i = pos;
  while (i < line.size() && line[i] != '"') {
    if (line[i] != '\\') {
      text += line[i++];
      continue;
    }
    if (i + 1 >= line.size()) return false;
    char e = line[i + 1];
    i += 2;
    switch (e) {
      case 'n': text += '\n'; break;
      case 'r': text += '\r'; break;
      case 't': text += '\t'; break;
      case 'b': text += '\b'; break;
      case 'f': text += '\f'; break;
      case 'u': {
        std::uint32_t cp = hex4(line, i);
        i += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= line.size() && line[i] == '\\' &&
            line[i + 1] == 'u') {
          std::uint32_t low = hex4(line, i + 2);
          i += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        append_utf8(text, cp);
        break;
      }
      default: text += e; break;  // \" \\ \/
    }
  }
  if (i >= line.size()) return false;
  raw = line.substr(pos, i - pos);
  return true;
}

bool parse_line(std::string_view line, std::string_view& raw, std::string& text) {
  std::size_t key = line.find("\"text\"");
  if (key == std::string_view::npos) return false;
  std::size_t quote = line.find('"', line.find(':', key + 6));
  if (quote == std::string_view::npos) return false;
  return read_string(line, quote + 1, raw, text);
}

}  // namespace

int main(int argc, char** argv) {
  bool raw_json = false;
  long bench_reps = 0;
  const char* path = nullptr;
  const char* only = nullptr;
  for (int a = 1; a < argc; ++a) {
    if (std::strcmp(argv[a], "--raw-json") == 0) raw_json = true;
    else if (std::strcmp(argv[a], "--bench") == 0 && a + 1 < argc)
      bench_reps = std::atol(argv[++a]);
    else if (std::strcmp(argv[a], "--only") == 0 && a + 1 < argc)
      only = argv[++a];
    else path = argv[a];
  }
  if (only && std::strcmp(only, "accurate") != 0 && std::strcmp(only, "quick") != 0) {
    std::fprintf(stderr, "--only accurate|quick\n");
    return 1;
  }
  std::ifstream file;
  if (path) {
    file.open(path);
    if (!file) {
      std::fprintf(stderr, "cannot open %s\n", path);
      return 1;
    }
  }
  std::istream& in = path ? file : std::cin;

  std::vector<std::string> texts;
  std::string line, text;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    std::string_view raw;
    if (!parse_line(line, raw, text)) {
      std::fprintf(stderr, "line %zu: no \"text\" string\n", line_no);
      return 1;
    }
    texts.emplace_back(raw_json ? std::string(raw) : text);
  }

  using Estimator = std::size_t (*)(std::string_view);
  const Estimator accurate = switchyard::core::estimate_text_tokens;
  const Estimator quick = switchyard::core::quick_text_tokens;

  if (bench_reps <= 0) {
    std::string out;
    for (const auto& t : texts) {
      if (only) {
        out += std::to_string((only[0] == 'a' ? accurate : quick)(t));
      } else {
        out += std::to_string(accurate(t));
        out += ' ';
        out += std::to_string(quick(t));
      }
      out += '\n';
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  }

  // Rounds of N passes each; the median round is the figure (the machine may be shared), the
  // best one shows what the code can do undisturbed.
  constexpr int kRounds = 7;
  std::size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();
  const double mb = static_cast<double>(bytes) * static_cast<double>(bench_reps) / 1e6;
  const double per_text = 1e9 / static_cast<double>(texts.size()) / static_cast<double>(bench_reps);
  std::fprintf(stderr, "%zu texts, %.2f MB, %ld passes a round, %d rounds:\n", texts.size(),
               static_cast<double>(bytes) / 1e6, bench_reps, kRounds);
  for (const auto& [name, estimate] :
       {std::pair{"estimate_text_tokens", accurate}, std::pair{"quick_text_tokens", quick}}) {
    if (only && name[0] != (only[0] == 'a' ? 'e' : 'q')) continue;
    std::size_t sink = 0;
    for (const auto& t : texts) sink += estimate(t);  // warm-up
    std::vector<double> seconds;
    for (int round = 0; round < kRounds; ++round) {
      const auto start = std::chrono::steady_clock::now();
      for (long r = 0; r < bench_reps; ++r)
        for (const auto& t : texts) sink += estimate(t);
      seconds.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(seconds.begin(), seconds.end());
    std::fprintf(stderr,
                 "  %-21s median %5.0f MB/s (%4.0f ns per text), best %5.0f MB/s (checksum %zu)\n",
                 name, mb / seconds[kRounds / 2], seconds[kRounds / 2] * per_text,
                 mb / seconds[0], sink);
  }
  return 0;
}
