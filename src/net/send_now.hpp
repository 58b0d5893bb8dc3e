#pragma once

#include <algorithm>
#include <array>
#include <cstddef>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>

#include "net/task.hpp"

namespace switchyard::net {

/// One non-blocking send of `bufs` on `s` (a socket in non-blocking mode): how a response and an
/// upstream request leave. Almost always the socket's send buffer takes everything, and no
/// asynchronous operation is needed (no handler, no trip through the scheduler). What the send
/// took is dropped from the front of `bufs`; returns whether something is left for an
/// asynchronous write. A full socket is not an error; any other failure is in `ec`.
template <std::size_t N>
bool send_now(Socket& s, std::array<boost::asio::const_buffer, N>& bufs, boost::system::error_code& ec) {
  std::size_t sent = s.write_some(bufs, ec);
  if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) {
    ec = {};
    sent = 0;
  }
  if (ec) return false;
  bool left = false;
  for (auto& buf : bufs) {
    std::size_t skip = std::min(sent, buf.size());
    buf += skip;
    sent -= skip;
    left |= buf.size() > 0;
  }
  return left;
}

}  // namespace switchyard::net
