#pragma once

#include <memory>

namespace switchyard::dialects {

/// See json_util.hpp; declared here so that headers need not include Boost.JSON whole.
class ReusableParser;
std::shared_ptr<ReusableParser> make_reusable_parser();

}  // namespace switchyard::dialects
