#include "tokenmix/layers/attention_kernel.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "isa_paths.hpp"
#include "layers/attention_test_util.hpp"
#include "tokenmix/core/random.hpp"

namespace test_layers_attention_kernel {

using namespace tokenmix;

namespace {

// Untiled reference in double: the n_q x n_k score matrix, masked softmax, times V.
template <class T>
Matrix<double> naive_attention(const Matrix<T>& q, const Matrix<T>& k, const Matrix<T>& v,
                               double scale, bool causal, const std::vector<bool>& hidden) {
  Matrix<double> s = (q.template cast<double>() * k.template cast<double>().transpose()) * scale;
  for (Index i = 0; i < s.rows(); ++i)
    for (Index j = 0; j < s.cols(); ++j)
      if ((causal && j > i) || (!hidden.empty() && hidden[j]))
        s(i, j) = -std::numeric_limits<double>::infinity();
  Matrix<double> p = s;
  Softmax<double>().forward(s, s.rows(), p);
  return p * v.template cast<double>();
}

template <class T>
Matrix<T> tiled(const Matrix<T>& q, const Matrix<T>& k, const Matrix<T>& v, T scale, bool causal,
                const std::vector<bool>& hidden) {
  // Embed every operand in a wider buffer so the kernel sees real strides.
  Matrix<T> qs = Matrix<T>::Constant(q.rows(), q.cols() + 3, T(99));
  Matrix<T> ks = Matrix<T>::Constant(k.cols(), k.rows() + 5, T(99));  // K^T, strided
  Matrix<T> vs = Matrix<T>::Constant(v.rows(), v.cols() + 1, T(99));
  qs.leftCols(q.cols()) = q;
  ks.rightCols(k.rows()) = k.transpose();
  vs.leftCols(v.cols()) = v;
  Matrix<T> os = Matrix<T>::Constant(q.rows(), v.cols() + 2, T(7));
  detail::AttentionHead<T> a;
  a.n_q = q.rows();
  a.n_k = k.rows();
  a.dim_qk = q.cols();
  a.dim_v = v.cols();
  a.q = qs.data();
  a.ldq = qs.cols();
  a.kt = ks.data() + 5;
  a.ldkt = ks.cols();
  a.v = vs.data();
  a.ldv = vs.cols();
  a.o = os.data() + 1;
  a.ldo = os.cols();
  a.scale = scale;
  a.causal = causal;
  std::vector<char> flags(hidden.begin(), hidden.end());
  static_assert(sizeof(char) == sizeof(bool), "bool flags stored as bytes");
  if (!hidden.empty()) a.key_hidden = reinterpret_cast<const bool*>(flags.data());
  detail::attention_head(a);
  // Columns outside the output range must be untouched.
  CHECK((os.col(0).array() == T(7)).all());
  CHECK((os.col(os.cols() - 1).array() == T(7)).all());
  return os.middleCols(1, v.cols());
}

}  // namespace

TEMPLATE_TEST_CASE("tiled online-softmax attention equals the untiled formula",
                   "[layers][attention_kernel]", float, double) {
  using T = TestType;
  Random rng(21);
  struct Case {
    Index n_q, n_k, d_qk, d_v;
    bool causal;
    double hide;
  };
  // Sizes straddle the 64-query and 256-key blocks; n_q != n_k covers cross attention.
  const Case cases[] = {{1, 1, 4, 3, false, 0},     {70, 70, 8, 8, true, 0},
                        {300, 300, 5, 7, false, 0.4}, {130, 520, 16, 4, false, 0},
                        {257, 257, 3, 3, true, 0.2},  {65, 30, 6, 6, true, 0}};
  for (Isa isa : tokenmix_test::supported_isa_paths("attention kernel"))
  for (const Case& c : cases) {
    ScopedIsa scoped(isa);
    INFO("isa " << isa_name(isa) << " n_q " << c.n_q << " n_k " << c.n_k << " causal "
                << c.causal << " hide " << c.hide);
    Matrix<T> q(c.n_q, c.d_qk), k(c.n_k, c.d_qk), v(c.n_k, c.d_v);
    rng.fill_normal(q, 0, 1.5);
    rng.fill_normal(k, 0, 1.5);
    rng.fill_normal(v, 0, 1);
    std::vector<bool> hidden;
    if (c.hide > 0) {
      hidden.resize(c.n_k);
      for (Index j = 0; j < c.n_k; ++j) hidden[j] = rng.uniform() < c.hide;
      hidden[0] = false;  // causal query 0 must keep key 0
    }
    const T scale = T(1) / std::sqrt(T(c.d_qk));
    const Matrix<T> o = tiled(q, k, v, scale, c.causal, hidden);
    attention_test::check_close(o, naive_attention(q, k, v, scale, c.causal, hidden),
                                attention_test::rtol<T>());
  }
}

TEMPLATE_TEST_CASE("attention rows with no visible key are NaN, one visible key copies V",
                   "[layers][attention_kernel]", float, double) {
  using T = TestType;
  Random rng(5);
  const Index n = 280;
  Matrix<T> q(n, 4), k(n, 4), v(n, 3);
  rng.fill_normal(q, 0, 1);
  rng.fill_normal(k, 0, 1);
  rng.fill_normal(v, 0, 1);
  std::vector<bool> hidden(n, true);
  hidden[270] = false;  // only key 270 (in the second key block) is visible
  Matrix<T> o = tiled(q, k, v, T(1), false, hidden);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < 3; ++j) CHECK(o(i, j) == Approx(v(270, j)).epsilon(1e-6).margin(1e-6));
  // With causal on top, queries before 270 see nothing: NaN, as PyTorch gives.
  o = tiled(q, k, v, T(1), true, hidden);
  for (Index i = 0; i < n; ++i) {
    if (i < 270) {
      CHECK(std::isnan(o(i, 0)));
    } else {
      CHECK(o(i, 2) == Approx(v(270, 2)).epsilon(1e-6).margin(1e-6));
    }
  }
  std::vector<bool> all(n, true);
  o = tiled(q, k, v, T(1), false, all);
  CHECK(o.array().isNaN().all());
}

TEMPLATE_TEST_CASE("attention with logits of magnitude 1e4 stays finite and exact",
                   "[layers][attention_kernel]", float, double) {
  using T = TestType;
  Random rng(9);
  const Index n = 300;
  Matrix<T> q(n, 2), k(n, 2), v(n, 2);
  rng.fill_normal(q, 0, 100);
  rng.fill_normal(k, 0, 100);
  rng.fill_normal(v, 0, 1);
  const Matrix<T> o = tiled(q, k, v, T(1), false, {});
  CHECK(o.array().isFinite().all());
  // Scores of ~1e4 make every softmax row one-hot (up to ties): compare with the formula.
  attention_test::check_close(o, naive_attention(q, k, v, 1.0, false, {}), 1e-4);
}

TEMPLATE_TEST_CASE("attention_heads splits heads and query blocks over threads deterministically",
                   "[layers][attention_kernel][threads]", float, double) {
  using T = TestType;
  Random rng(13);
  const Index n = 200, heads = 3, hd = 8;
  Matrix<T> qkv(n, 3 * heads * hd);
  rng.fill_normal(qkv, 0, 1);
  const Matrix<T> kt = qkv.middleCols(heads * hd, heads * hd).transpose();
  for (bool causal : {false, true}) {
    auto head_of = [&](T* out) {
      return [&, out](Index h) {
        detail::AttentionHead<T> a;
        a.n_q = a.n_k = n;
        a.dim_qk = a.dim_v = hd;
        a.q = qkv.data() + h * hd;
        a.kt = kt.data() + h * hd * n;
        a.v = qkv.data() + (2 * heads + h) * hd;
        a.ldq = a.ldv = qkv.cols();
        a.ldkt = n;
        a.o = out + h * hd;
        a.ldo = heads * hd;
        a.scale = T(0.3);
        a.causal = causal;
        return a;
      };
    };
    Matrix<T> whole(n, heads * hd), one(n, heads * hd), two(n, heads * hd);
    for (Index h = 0; h < heads; ++h) detail::attention_head(head_of(whole.data())(h));
    detail::attention_heads<T>(heads, n, head_of(one.data()), 1);
    detail::attention_heads<T>(heads, n, head_of(two.data()), 2);
    CHECK(one == whole);
    CHECK(two == whole);
  }
}

}  // namespace test_layers_attention_kernel
