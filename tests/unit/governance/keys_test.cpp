#include "governance/keys.hpp"

#include <gtest/gtest.h>

using namespace switchyard;

TEST(Keys, Sha256MatchesKnownVector) {
  EXPECT_EQ(governance::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Keys, FindsKeysByHashAndChecksRoutes) {
  std::vector<config::KeyConfig> keys{{"team-a", governance::sha256_hex("sk-a"), {"auto"}},
                                      {"admin", governance::sha256_hex("sk-b"), {"*"}}};
  governance::KeyStore store(keys);
  const config::KeyConfig* a = store.find("sk-a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->name, "team-a");
  EXPECT_EQ(store.find("sk-c"), nullptr);
  EXPECT_EQ(store.find(""), nullptr);
  EXPECT_TRUE(governance::KeyStore::allows(*a, "auto"));
  EXPECT_FALSE(governance::KeyStore::allows(*a, "gpt-4o"));
  EXPECT_TRUE(governance::KeyStore::allows(*store.find("sk-b"), "anything"));
}
