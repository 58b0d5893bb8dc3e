#pragma once

#include <cerrno>

#include <boost/system/error_code.hpp>

namespace switchyard::net {

/// Whether a socket call failed because this process (or this host) ran out of something of its
/// own: descriptors, socket buffers, kernel memory, local ports. Such a failure says nothing about
/// the peer it was meant for, so it must not count against that peer's health.
inline bool is_local_shortage(const boost::system::error_code& ec) {
  if (ec.category() != boost::system::system_category() &&
      ec.category() != boost::system::generic_category())
    return false;
  switch (ec.value()) {
    case EMFILE:         // this process's descriptor limit
    case ENFILE:         // the system's
    case ENOBUFS:
    case ENOMEM:
    case EADDRNOTAVAIL:  // no local port left to connect from
      return true;
    default:
      return false;
  }
}

/// The two of those a spare descriptor can work around (see Loop::accept_loop).
inline bool is_out_of_descriptors(const boost::system::error_code& ec) {
  return is_local_shortage(ec) && (ec.value() == EMFILE || ec.value() == ENFILE);
}

}  // namespace switchyard::net
