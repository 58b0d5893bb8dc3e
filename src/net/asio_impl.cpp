// The one translation unit that compiles Asio (and its SSL support); everything else includes
// the headers with BOOST_ASIO_SEPARATE_COMPILATION.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
