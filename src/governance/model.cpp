#include "governance/model.hpp"

#include <cctype>
#include <chrono>

namespace switchyard::governance {

std::string_view to_string(Scope s) {
  switch (s) {
    case Scope::key: return "key";
    case Scope::team: return "team";
    case Scope::user: return "user";
    case Scope::route: return "route";
    case Scope::deployment: return "deployment";
  }
  return "key";
}

std::optional<Scope> parse_scope(std::string_view s) {
  for (Scope v : {Scope::key, Scope::team, Scope::user, Scope::route, Scope::deployment})
    if (to_string(v) == s) return v;
  return std::nullopt;
}

std::string_view to_string(Period p) {
  switch (p) {
    case Period::day: return "day";
    case Period::week: return "week";
    case Period::month: return "month";
    case Period::total: return "total";
  }
  return "total";
}

std::optional<Period> parse_period(std::string_view s) {
  for (Period v : {Period::day, Period::week, Period::month, Period::total})
    if (to_string(v) == s) return v;
  return std::nullopt;
}

PeriodBounds period_bounds(Period p, std::int32_t offset_min, std::int64_t now_ms) {
  using namespace std::chrono;
  if (p == Period::total) return {0, INT64_MAX};
  const std::int64_t offset_ms = static_cast<std::int64_t>(offset_min) * 60'000;
  // Local wall time as if it were UTC: its calendar day is the budget's day.
  const sys_time<milliseconds> local{milliseconds(now_ms + offset_ms)};
  const sys_days today = floor<days>(local);
  sys_days start = today, end = today + days(1);
  if (p == Period::week) {
    const weekday wd{today};
    start = today - days((wd.c_encoding() + 6) % 7);  // back to Monday
    end = start + days(7);
  } else if (p == Period::month) {
    const year_month_day ymd{today};
    start = sys_days{ymd.year() / ymd.month() / 1};
    end = sys_days{(ymd.year() / ymd.month() + months(1)) / 1};
  }
  auto ms = [&](sys_days d) { return duration_cast<milliseconds>(d.time_since_epoch()).count() - offset_ms; };
  return {ms(start), ms(end)};
}

std::optional<std::int32_t> parse_utc_offset(std::string_view tz) {
  if (tz == "UTC" || tz == "Z" || tz == "GMT" || tz == "Etc/UTC") return 0;
  if (tz.substr(0, 3) == "UTC" || tz.substr(0, 3) == "GMT") tz.remove_prefix(3);
  if (tz.size() != 6 && tz.size() != 5 && tz.size() != 3) return std::nullopt;
  if (tz[0] != '+' && tz[0] != '-') return std::nullopt;
  auto digit = [&](std::size_t i) -> int {
    return i < tz.size() && tz[i] >= '0' && tz[i] <= '9' ? tz[i] - '0' : -1;
  };
  int h1 = digit(1), h2 = digit(2);
  if (h1 < 0 || h2 < 0) return std::nullopt;
  int minutes = 0;
  if (tz.size() > 3) {
    std::size_t m = tz.size() == 6 ? 4 : 3;
    if (tz.size() == 6 && tz[3] != ':') return std::nullopt;
    int m1 = digit(m), m2 = digit(m + 1);
    if (m1 < 0 || m2 < 0) return std::nullopt;
    minutes = m1 * 10 + m2;
    if (minutes >= 60) return std::nullopt;
  }
  int hours = h1 * 10 + h2;
  if (hours > 14) return std::nullopt;
  int total = hours * 60 + minutes;
  return tz[0] == '-' ? -total : total;
}

bool valid_slug(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (unsigned char c : s)
    if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

std::int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace switchyard::governance
