#pragma once
/// Runs a coroutine to completion on a private io_context (unit tests only).

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "http/task.hpp"

namespace basalt::http::testing {

template <class T>
T RunTask(Task<T> task) {
  boost::asio::io_context io;
  auto future = boost::asio::co_spawn(io, std::move(task), boost::asio::use_future);
  io.run();
  return future.get();
}

}  // namespace basalt::http::testing
