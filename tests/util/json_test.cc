#include "util/json.h"

#include <gtest/gtest.h>

namespace panal::json {
namespace {

TEST(Json, NestsObjectsAndArraysWithCommasInTheRightPlaces) {
  writer w;
  w.begin_object().field("a", std::uint64_t{1}).key("b").begin_array().value("x").value(true).null().end_array();
  w.key("c").begin_object().end_object().field("d", -2.5).end_object();
  EXPECT_EQ(w.take(), R"({"a":1,"b":["x",true,null],"c":{},"d":-2.5})");
}

TEST(Json, EscapesQuotesBackslashesAndControlCharacters) {
  writer w;
  w.value(std::string_view("q\"b\\n\n\x01", 7));
  EXPECT_EQ(w.take(), R"("q\"b\\n\u000a\u0001")");
}

TEST(Json, KeepsUtf8AndReplacesBytesThatAreNot) {
  writer w;
  w.begin_array().value("caf\xC3\xA9").value("\xFF\xC3").value("\xE2\x82").end_array();
  EXPECT_EQ(w.take(), "[\"caf\xC3\xA9\",\"\xEF\xBF\xBD\xEF\xBF\xBD\",\"\xEF\xBF\xBD\xEF\xBF\xBD\"]");
}

TEST(Json, NonFiniteNumbersBecomeNull) {
  writer w;
  w.begin_array().value(1.0 / 0.0).value(0.1).end_array();
  EXPECT_EQ(w.take(), "[null,0.1]");
}

}  // namespace
}  // namespace panal::json
