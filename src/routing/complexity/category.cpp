#include "routing/complexity/category.hpp"

#include <algorithm>
#include <string>

namespace switchyard::routing::complexity {

namespace {

using catalog::Category;

struct Cue {
  std::string_view text;  ///< lower-case
  Category category;
  float weight;
};

// Phrases that say what is asked, matched on the lower-cased text; each counts once.
constexpr Cue kCues[] = {
    {"```", Category::code, 3},           {"def ", Category::code, 2},
    {"function", Category::code, 1},      {"python", Category::code, 2},
    {"javascript", Category::code, 2},    {"typescript", Category::code, 2},
    {"c++", Category::code, 2},           {"sql", Category::code, 1.5},
    {"compile", Category::code, 1.5},     {"stack trace", Category::code, 2},
    {"return ", Category::code, 1},       {"write a program", Category::code, 3},
    {"write a function", Category::code, 2}, {"assert ", Category::code, 2},
    {"implement", Category::code, 1.5},   {"regex", Category::code, 2},
    {"solve", Category::math, 1.5},       {"equation", Category::math, 2},
    {"integral", Category::math, 2},      {"derivative", Category::math, 2},
    {"prove", Category::math, 1.5},       {"theorem", Category::math, 2},
    {"probability", Category::math, 1.5}, {"calculate", Category::math, 1.5},
    {"compute", Category::math, 1},       {"matrix", Category::math, 1.5},
    {"polynomial", Category::math, 2},    {"sqrt", Category::math, 2},
    {"\\frac", Category::math, 2},        {"how many", Category::math, 1},
    {"what is the value", Category::math, 2}, {"find the", Category::math, 1},
    {"homomorphism", Category::math, 2},  {"subgroup", Category::math, 2},
    {"group of order", Category::math, 2}, {"irreducible", Category::math, 2},
    {"integer", Category::math, 1},       {"prime number", Category::math, 1},
    {" ring ", Category::math, 1.5},      {"eigen", Category::math, 2},
    {"vector space", Category::math, 2},  {" mod ", Category::math, 1.5},
    {"let x", Category::math, 1.5},       {"let f", Category::math, 1.5},
    {"variance", Category::math, 1.5},    {"standard deviation", Category::math, 2},
    {"velocity", Category::math, 1.5},    {"acceleration", Category::math, 1.5},
    {" _ ", Category::reasoning, 3},      {"why", Category::reasoning, 1},
    {"step by step", Category::reasoning, 1.5}, {"if all", Category::reasoning, 1.5},
    {"therefore", Category::reasoning, 1}, {"most likely", Category::reasoning, 1.5},
    {"more likely", Category::reasoning, 1.5}, {"best explains", Category::reasoning, 1.5},
    {"because", Category::reasoning, 0.5}, {"riddle", Category::reasoning, 2},
    {"puzzle", Category::reasoning, 2},
    {"what is", Category::knowledge, 1},  {"who ", Category::knowledge, 1},
    {"when did", Category::knowledge, 1.5}, {"which of the following", Category::knowledge, 1.5},
    {"capital of", Category::knowledge, 2}, {"define", Category::knowledge, 1},
    {"according to", Category::knowledge, 1},
    {"write a story", Category::writing, 3}, {"write a poem", Category::writing, 3},
    {"poem", Category::writing, 2},       {"essay", Category::writing, 2},
    {"email", Category::writing, 1.5},    {"blog post", Category::writing, 2},
    {"rewrite", Category::writing, 1.5},  {"haiku", Category::writing, 3},
    {"slogan", Category::writing, 2},
    {"summarize", Category::extraction, 3}, {"summarise", Category::extraction, 3},
    {"summary", Category::extraction, 2}, {"tl;dr", Category::extraction, 3},
    {"extract", Category::extraction, 3}, {"list all", Category::extraction, 1.5},
    {"key points", Category::extraction, 2}, {"as json", Category::extraction, 2},
    {"translate", Category::extraction, 1.5},
    {"hello", Category::chat, 1.5},       {"thanks", Category::chat, 1.5},
    {"thank you", Category::chat, 1.5},   {"how are you", Category::chat, 2},
    {"good morning", Category::chat, 2},
};

}  // namespace

CategoryScores categorize(std::string_view text) {
  CategoryScores out;
  // The latest turn says what is asked: the last 4 KiB, lower-cased once.
  std::string lower(text.substr(text.size() > 4096 ? text.size() - 4096 : 0));
  std::size_t math = 0, code = 0, digits = 0, letters = 0, options = 0, numeric_options = 0;
  for (std::size_t i = 0; i < lower.size(); ++i) {
    char& c = lower[i];
    if (c >= 'A' && c <= 'Z') {
      // "A." / "B)" at a line start: multiple choice.
      if (c <= 'E' && i + 1 < lower.size() && (lower[i + 1] == '.' || lower[i + 1] == ')') &&
          (i == 0 || lower[i - 1] == '\n')) {
        ++options;
        // An answer that is a number ("A. 0.024 m", "B) 12"): a computation was asked.
        std::size_t k = i + 2;
        while (k < lower.size() && lower[k] == ' ') ++k;
        if (k < lower.size() && ((lower[k] >= '0' && lower[k] <= '9') || lower[k] == '-' || lower[k] == '$'))
          ++numeric_options;
      }
      c = static_cast<char>(c + 32);
    }
    if (c >= 'a' && c <= 'z') ++letters;
    else if (c >= '0' && c <= '9') ++digits;
    switch (c) {
      case '=': case '^': case '+': case '*': case '/': case '<': case '>': ++math; break;
      case '{': case '}': case ';': ++code; break;
      default: break;
    }
  }
  auto add = [&](Category c, float w) { out.score[static_cast<int>(c)] += w; };
  for (const Cue& cue : kCues)
    if (lower.find(cue.text) != std::string::npos) add(cue.category, cue.weight);
  const float size = static_cast<float>(std::max<std::size_t>(lower.size(), 1));
  add(Category::math, std::min(3.0f, 80.0f * static_cast<float>(math) / size));
  add(Category::math, std::min(2.0f, 8.0f * static_cast<float>(digits) / static_cast<float>(letters + digits + 1)));
  add(Category::code, std::min(3.0f, 60.0f * static_cast<float>(code) / size));
  if (options >= 2) add(Category::knowledge, 1.0f);  // a test question: knowledge unless cues say more
  if (options >= 2 && numeric_options * 4 >= options * 3) add(Category::math, 2.0f);  // numeric answers
  if (lower.size() < 40) add(Category::chat, 1.0f);  // short: small talk
  float best = 0.75f;                                  // below this: chat
  for (std::size_t k = 0; k < out.score.size(); ++k)
    if (out.score[k] > best) {
      best = out.score[k];
      out.best = static_cast<Category>(k);
    }
  return out;
}

}  // namespace switchyard::routing::complexity
