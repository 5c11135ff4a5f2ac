#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "tokenmix/io/tensor.hpp"

namespace test_io_tensor {

using namespace tokenmix;

namespace {
std::uint32_t bits_of(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// binary16 / bfloat16 decoded from the IEEE definition with ldexp, independent of the
// bit-shuffling in io/tensor.hpp.
double decode(std::uint32_t bits, int exponent_bits, int mantissa_bits) {
  const int bias = (1 << (exponent_bits - 1)) - 1;
  const bool negative = (bits >> (exponent_bits + mantissa_bits)) & 1u;
  const std::uint32_t e = (bits >> mantissa_bits) & ((1u << exponent_bits) - 1);
  const std::uint32_t m = bits & ((1u << mantissa_bits) - 1);
  double v;
  if (e == (1u << exponent_bits) - 1) {
    v = m ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  } else if (e == 0) {
    v = std::ldexp(static_cast<double>(m), 1 - bias - mantissa_bits);
  } else {
    v = std::ldexp(static_cast<double>(m + (1u << mantissa_bits)),
                   static_cast<int>(e) - bias - mantissa_bits);
  }
  return negative ? -v : v;
}
}  // namespace

TEST_CASE("half_to_float is exact for all 65536 half values", "[io][tensor]") {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = detail::half_to_float(static_cast<std::uint16_t>(h));
    const double want = decode(h, 5, 10);
    INFO("half bits " << h);
    if (std::isnan(want)) {
      REQUIRE(std::isnan(f));
      // NaN payload and sign carried over to the top of the float mantissa.
      REQUIRE(bits_of(f) == (((h & 0x8000u) << 16) | 0x7f800000u | ((h & 0x3ffu) << 13)));
    } else {
      REQUIRE(static_cast<double>(f) == want);
      REQUIRE(std::signbit(f) == ((h & 0x8000u) != 0));
    }
  }
  CHECK(detail::half_to_float(0x3c00) == 1.0f);
  CHECK(detail::half_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(detail::half_to_float(0x03ff) == std::ldexp(1023.0f, -24));  // largest subnormal
  CHECK(detail::half_to_float(0x0400) == std::ldexp(1.0f, -14));  // smallest normal
  CHECK(detail::half_to_float(0x7bff) == 65504.0f);
  CHECK(detail::half_to_float(0xfc00) == -std::numeric_limits<float>::infinity());
  CHECK(bits_of(detail::half_to_float(0x8000)) == 0x80000000u);
}

TEST_CASE("bfloat16_to_float is exact for all 65536 bfloat16 values", "[io][tensor]") {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const float f = detail::bfloat16_to_float(static_cast<std::uint16_t>(b));
    const double want = decode(b, 8, 7);
    INFO("bfloat16 bits " << b);
    if (std::isnan(want)) {
      REQUIRE(std::isnan(f));
    } else {
      REQUIRE(static_cast<double>(f) == want);
    }
    REQUIRE(bits_of(f) == b << 16);
  }
  CHECK(detail::bfloat16_to_float(0x0001) == std::ldexp(1.0f, -133));  // subnormal
  CHECK(detail::bfloat16_to_float(0x7f80) == std::numeric_limits<float>::infinity());
}

TEMPLATE_TEST_CASE("Tensor converts every dtype to floating values", "[io][tensor]", float, double) {
  const std::int64_t i64[3] = {-3, 0, 1LL << 40};
  CHECK(Tensor::from_values<std::int64_t>({3}, i64).values<TestType>() ==
        std::vector<TestType>{-3, 0, static_cast<TestType>(1LL << 40)});
  const std::int32_t i32[2] = {-7, 123456};
  CHECK(Tensor::from_values<std::int32_t>({2}, i32).values<TestType>() ==
        std::vector<TestType>{-7, 123456});
  const double f64[2] = {0.1, -2.5};
  CHECK(Tensor::from_values<double>({2}, f64).values<TestType>() ==
        std::vector<TestType>{static_cast<TestType>(0.1), static_cast<TestType>(-2.5)});

  Tensor h(DType::F16, {4});
  const std::uint16_t hb[4] = {0x3c00, 0x0001, 0x7c00, 0x7e00};  // 1, 2^-24, inf, nan
  std::memcpy(h.raw(), hb, sizeof hb);
  const auto hv = h.values<TestType>();
  CHECK(hv[0] == 1);
  CHECK(hv[1] == std::ldexp(TestType(1), -24));
  CHECK(std::isinf(hv[2]));
  CHECK(std::isnan(hv[3]));

  Tensor bf(DType::BF16, {3});
  const std::uint16_t bb[3] = {0xbf80, 0x0001, 0xff80};  // -1, subnormal, -inf
  std::memcpy(bf.raw(), bb, sizeof bb);
  const auto bv = bf.values<TestType>();
  CHECK(bv[0] == -1);
  CHECK(bv[1] == static_cast<TestType>(std::ldexp(1.0f, -133)));
  CHECK(bv[2] == -std::numeric_limits<TestType>::infinity());
}

TEST_CASE("Tensor shape, size and typed access", "[io][tensor]") {
  const float v[6] = {1, 2, 3, 4, 5, 6};
  const Tensor t = Tensor::from_values<float>({2, 3}, v);
  CHECK(t.dtype() == DType::F32);
  CHECK(t.dim() == 2);
  CHECK(t.numel() == 6);
  CHECK(t.byte_size() == 24);
  CHECK(t.shape_string() == "[2, 3]");
  CHECK(t.data<float>()[4] == 5.0f);
  CHECK_THROWS_AS(t.data<double>(), FormatError);
  CHECK_THROWS_WITH(t.data<double>(), Catch::Matchers::Contains("expected dtype F64, got F32"));

  Matrix<double> m = t.to_matrix<double>();
  CHECK(m.rows() == 2);
  CHECK(m.cols() == 3);
  CHECK(m(1, 0) == 4.0);
  const Matrix<float> row = Tensor::from_values<float>({6}, v).to_matrix<float>();
  CHECK(row.rows() == 1);
  CHECK(row.cols() == 6);
  const Matrix<float> scalar = Tensor::from_values<float>({}, v).to_matrix<float>();
  CHECK(scalar.size() == 1);
  CHECK(scalar(0, 0) == 1.0f);
  CHECK_THROWS_AS(Tensor::from_values<float>({1, 2, 3}, v).to_matrix<float>(), ShapeError);

  const Tensor empty(DType::F64, {0, 5});
  CHECK(empty.numel() == 0);
  CHECK(empty.byte_size() == 0);
  CHECK(empty.values<double>().empty());
  const Tensor none;
  CHECK(none.numel() == 0);
  CHECK(none.values<float>().empty());
}

TEST_CASE("Tensor rejects negative and overflowing shapes before allocating", "[io][tensor]") {
  CHECK_THROWS_AS(Tensor(DType::F32, {2, -1}), ShapeError);
  CHECK_THROWS_WITH(Tensor(DType::F32, {2, -1}),
                    Catch::Matchers::Contains("expected non-negative extents, got [2, -1]"));
  CHECK_THROWS_AS(Tensor(DType::F64, {1LL << 31, 1LL << 31, 1LL << 31}), ShapeError);
  CHECK(Tensor(DType::F64, {1LL << 40, 0, 1LL << 40}).numel() == 0);  // empty wins over huge
}

}  // namespace test_io_tensor
