// The outbound client's SSRF rules: which addresses are refused without webhooks.allow_private,
// URL syntax, and that Fetch itself refuses a loopback destination at connect time.

#include "http/client.hpp"

#include <gtest/gtest.h>

#include "run_task.hpp"

namespace basalt::http {
namespace {

TEST(ClientAddresses, PrivateLoopbackAndSpecialRangesAreForbidden) {
  for (const char* a : {"127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                        "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::", "::1",
                        "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
                        "::ffff:169.254.1.1", "64:ff9b::7f00:1", "::127.0.0.1", "not an address", ""}) {
    EXPECT_TRUE(IsForbiddenAddress(a)) << a;
  }
}

TEST(ClientAddresses, PublicAddressesAreAllowed) {
  for (const char* a : {"93.184.216.34", "8.8.8.8", "172.32.0.1", "192.169.0.1", "100.128.0.1", "2606:4700::1111",
                        "::ffff:8.8.8.8"}) {
    EXPECT_FALSE(IsForbiddenAddress(a)) << a;
  }
}

TEST(ClientUrls, SyntaxIsChecked) {
  EXPECT_TRUE(CheckUrlSyntax("https://example.com/hook?x=1"));
  EXPECT_TRUE(CheckUrlSyntax("http://127.0.0.1:8080/"));
  EXPECT_TRUE(CheckUrlSyntax("http://[::1]:9/x"));
  for (const char* bad : {"ftp://example.com/", "example.com/hook", "http://", "https://user:pw@example.com/",
                          "http://example.com/#frag", "javascript:alert(1)", "http://example.com:0/"}) {
    EXPECT_FALSE(CheckUrlSyntax(bad)) << bad;
  }
}

TEST(ClientFetch, RefusesLoopbackAtConnectTimeUnlessAllowed) {
  ClientRequest request;
  request.url = "http://127.0.0.1:9/x";
  auto refused = testing::RunTask(Fetch(request));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, core::ErrorCode::kValidation);
  request.url = "http://localhost:9/x";  // a name resolving to loopback
  auto by_name = testing::RunTask(Fetch(request));
  ASSERT_FALSE(by_name);
  EXPECT_EQ(by_name.error().code, core::ErrorCode::kValidation);
  auto check = testing::RunTask(CheckDestination("http://[::1]:9/", false));
  EXPECT_FALSE(check);
  EXPECT_TRUE(testing::RunTask(CheckDestination("http://[::1]:9/", true)));
}

}  // namespace
}  // namespace basalt::http
