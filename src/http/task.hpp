#pragma once
/// The coroutine type of handlers and middleware. Only the light awaitable header is included here.

#include <boost/asio/awaitable.hpp>

namespace basalt::http {

/// A coroutine returning T, run on the I/O thread that owns the connection.
template <class T>
using Task = boost::asio::awaitable<T>;

}  // namespace basalt::http
