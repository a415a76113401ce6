// The outbound HTTP client: the only translation unit instantiating Beast's client templates.

#include "http/client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <openssl/ssl.h>

#include <array>
#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <optional>

namespace basalt::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using core::ErrorCode;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

struct Target {
  bool https = false;
  std::string host;  // without brackets
  std::string port;
  std::string target;  // path and query
  std::string host_header;
};

core::Result<Target> ParseTarget(std::string_view url) {
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) return core::Fail(ErrorCode::kValidation, "The URL is not a valid absolute URL.");
  const boost::urls::url_view u = *parsed;
  Target t;
  const std::string scheme(u.scheme());
  if (scheme == "https") t.https = true;
  else if (scheme != "http") return core::Fail(ErrorCode::kValidation, "The URL must use http or https.");
  if (u.has_userinfo()) return core::Fail(ErrorCode::kValidation, "The URL must not carry user information.");
  if (u.has_fragment()) return core::Fail(ErrorCode::kValidation, "The URL must not have a fragment.");
  switch (u.host_type()) {
    case boost::urls::host_type::ipv6: t.host = u.host_ipv6_address().to_string(); break;
    case boost::urls::host_type::ipv4: t.host = u.host_ipv4_address().to_string(); break;
    case boost::urls::host_type::name: t.host = u.host(); break;
    default: return core::Fail(ErrorCode::kValidation, "The URL must name a host.");
  }
  if (t.host.empty()) return core::Fail(ErrorCode::kValidation, "The URL must name a host.");
  t.port = u.has_port() ? std::string(u.port()) : (t.https ? "443" : "80");
  if (u.has_port() && (u.port_number() == 0)) return core::Fail(ErrorCode::kValidation, "The URL's port is invalid.");
  t.target = std::string(u.encoded_path());
  if (t.target.empty()) t.target = "/";
  if (u.has_query()) t.target += "?" + std::string(u.encoded_query());
  t.host_header = std::string(u.encoded_host_and_port());
  return t;
}

bool InV4(const std::array<unsigned char, 4>& b, std::uint32_t net, int bits) {
  const std::uint32_t v = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
  const std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
  return (v & mask) == (net & mask);
}

bool ForbiddenV4(const asio::ip::address_v4& a) {
  const auto b = a.to_bytes();
  static constexpr std::pair<std::uint32_t, int> kNets[] = {
      {0x00000000, 8},   // "this network", unspecified
      {0x0A000000, 8},   // 10/8
      {0x64400000, 10},  // 100.64/10 CGNAT
      {0x7F000000, 8},   // loopback
      {0xA9FE0000, 16},  // link-local
      {0xAC100000, 12},  // 172.16/12
      {0xC0000000, 24},  // IETF protocol assignments
      {0xC0000200, 24},  // TEST-NET-1
      {0xC0A80000, 16},  // 192.168/16
      {0xC6120000, 15},  // benchmarking
      {0xC6336400, 24},  // TEST-NET-2
      {0xCB007100, 24},  // TEST-NET-3
      {0xE0000000, 4},   // multicast
      {0xF0000000, 4},   // reserved, broadcast
  };
  for (const auto& [net, bits] : kNets) {
    if (InV4(b, net, bits)) return true;
  }
  return false;
}

bool ForbiddenV6(const asio::ip::address_v6& a) {
  if (a.is_v4_mapped()) return ForbiddenV4(asio::ip::make_address_v4(asio::ip::v4_mapped, a));
  const auto b = a.to_bytes();
  if (a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_link_local() || a.is_site_local()) return true;
  if ((b[0] & 0xFE) == 0xFC) return true;  // fc00::/7 unique local
  // ::/96 IPv4-compatible (deprecated) and 64:ff9b::/96 NAT64: judge the embedded IPv4 address.
  const bool compat = std::all_of(b.begin(), b.begin() + 12, [](unsigned char c) { return c == 0; });
  const bool nat64 = b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b &&
                     std::all_of(b.begin() + 4, b.begin() + 12, [](unsigned char c) { return c == 0; });
  if (compat || nat64) return ForbiddenV4(asio::ip::address_v4({b[12], b[13], b[14], b[15]}));
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return true;  // documentation
  return false;
}

bool Forbidden(const asio::ip::address& a) { return a.is_v4() ? ForbiddenV4(a.to_v4()) : ForbiddenV6(a.to_v6()); }

asio::ssl::context& ClientTls() {
  static asio::ssl::context* ctx = [] {
    auto* c = new asio::ssl::context(asio::ssl::context::tls_client);
    c->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    c->set_default_verify_paths();
    c->set_verify_mode(asio::ssl::verify_peer);
    return c;
  }();
  return *ctx;
}

core::Error Unavailable(std::string message) { return core::Error::Make(ErrorCode::kUnavailable, std::move(message)); }

// Resolves and filters. The endpoints returned are the only ones the client may connect to.
Task<core::Result<std::vector<tcp::endpoint>>> Resolve(const Target& t, bool allow_private,
                                                      std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  asio::steady_timer guard(ex, timeout);
  guard.async_wait([&resolver](const boost::system::error_code& ec) {
    if (!ec) resolver.cancel();
  });
  auto [ec, results] = co_await resolver.async_resolve(t.host, t.port, kUseTuple);
  guard.cancel();
  if (ec) co_return core::Fail(ErrorCode::kValidation, "The host '" + t.host + "' cannot be resolved.", ec.message());
  std::vector<tcp::endpoint> endpoints;
  for (const auto& entry : results) {
    const auto address = entry.endpoint().address();
    if (!allow_private && Forbidden(address)) {
      co_return core::Fail(ErrorCode::kValidation,
                           "The destination resolves to a private or loopback address (" + address.to_string() +
                               "), which is refused unless webhooks.allow_private is true.");
    }
    endpoints.push_back(entry.endpoint());
  }
  if (endpoints.empty()) co_return core::Fail(ErrorCode::kValidation, "The host '" + t.host + "' has no address.");
  co_return endpoints;
}

template <class Stream>
Task<core::Result<ClientResponse>> Exchange(Stream& stream, const Target& t, const ClientRequest& request,
                                            std::chrono::steady_clock::time_point deadline) {
  bhttp::request<bhttp::string_body> req;
  req.method_string(request.method);
  req.target(t.target);
  req.version(11);
  req.set(bhttp::field::host, t.host_header);
  req.set(bhttp::field::user_agent, "basalt-webhooks");
  req.set(bhttp::field::connection, "close");
  for (const auto& [name, value] : request.headers) req.set(name, value);
  req.body() = request.body;
  req.prepare_payload();
  beast::get_lowest_layer(stream).expires_at(deadline);
  auto [wec, wn] = co_await bhttp::async_write(stream, req, kUseTuple);
  if (wec) co_return std::unexpected(Unavailable(wec == beast::error::timeout ? "timed out" : "send failed: " + wec.message()));
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(request.max_response_bytes);
  auto [rec, rn] = co_await bhttp::async_read(stream, buffer, parser, kUseTuple);
  if (rec && !(rec == bhttp::error::body_limit && parser.is_header_done())) {
    co_return std::unexpected(Unavailable(rec == beast::error::timeout ? "timed out" : "receive failed: " + rec.message()));
  }
  ClientResponse out;
  out.status = static_cast<int>(parser.get().result_int());
  out.body = std::move(parser.get().body());
  co_return out;
}

}  // namespace

bool IsForbiddenAddress(std::string_view address) {
  boost::system::error_code ec;
  const auto a = asio::ip::make_address(std::string(address), ec);
  if (ec) return true;
  return Forbidden(a);
}

core::Result<void> CheckUrlSyntax(std::string_view url) {
  if (url.size() > 2048) return core::Fail(ErrorCode::kValidation, "The URL is longer than 2048 characters.");
  auto t = ParseTarget(url);
  if (!t) return std::unexpected(std::move(t.error()));
  return {};
}

Task<core::Result<void>> CheckDestination(std::string url, bool allow_private) {
  auto t = ParseTarget(url);
  if (!t) co_return std::unexpected(std::move(t.error()));
  auto endpoints = co_await Resolve(*t, allow_private, std::chrono::milliseconds(5000));
  if (!endpoints) co_return std::unexpected(std::move(endpoints.error()));
  co_return core::Result<void>{};
}

Task<core::Result<ClientResponse>> Fetch(ClientRequest request) {
  auto t = ParseTarget(request.url);
  if (!t) co_return std::unexpected(std::move(t.error()));
  const auto deadline = std::chrono::steady_clock::now() + request.total_timeout;
  auto endpoints = co_await Resolve(*t, request.allow_private, request.connect_timeout);
  if (!endpoints) co_return std::unexpected(std::move(endpoints.error()));
  auto ex = co_await asio::this_coro::executor;
  beast::tcp_stream tcp_stream(ex);
  tcp_stream.expires_at(std::min(deadline, std::chrono::steady_clock::now() + request.connect_timeout));
  auto [cec, ep] = co_await tcp_stream.async_connect(*endpoints, kUseTuple);
  if (cec) co_return std::unexpected(Unavailable(cec == beast::error::timeout ? "connect timed out" : "connect failed: " + cec.message()));
  if (!t->https) {
    auto r = co_await Exchange(tcp_stream, *t, request, deadline);
    boost::system::error_code ignored;
    tcp_stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return r;
  }
  beast::ssl_stream<beast::tcp_stream> tls(std::move(tcp_stream), ClientTls());
  if (!SSL_set_tlsext_host_name(tls.native_handle(), t->host.c_str()))
    co_return std::unexpected(Unavailable("TLS setup failed"));
  tls.set_verify_callback(asio::ssl::host_name_verification(t->host));
  beast::get_lowest_layer(tls).expires_at(std::min(deadline, std::chrono::steady_clock::now() + request.connect_timeout));
  auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::client, kUseTuple);
  if (hec) co_return std::unexpected(Unavailable("TLS handshake failed: " + hec.message()));
  auto r = co_await Exchange(tls, *t, request, deadline);
  beast::get_lowest_layer(tls).expires_after(std::chrono::seconds(1));
  co_await tls.async_shutdown(kUseTuple);
  co_return r;
}

}  // namespace basalt::http
