// The hostile and degenerate input table (tests/hostile/README.md): one TEST_CASE per row,
// each walking every public layer and model of the catalogue (hostile_subjects.hpp).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "hostile/alloc_counter.hpp"
#include "hostile/hostile_subjects.hpp"
#include "hostile/hostile_subjects.cpp.inc"

namespace {

using hostile::Index;
using hostile::Input;
using hostile::Kind;
using hostile::Mat;
using hostile::Subject;
using hostile::subjects;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

bool row_has(const Mat& y, Index r, bool (*pred)(float)) {
  for (Index j = 0; j < y.cols(); ++j)
    if (pred(y(r, j))) return true;
  return false;
}
bool is_nan(float v) { return std::isnan(v); }
bool not_finite(float v) { return !std::isfinite(v); }
bool any_of(const Mat& y, bool (*pred)(float)) {
  for (Index r = 0; r < y.rows(); ++r)
    if (row_has(y, r, pred)) return true;
  return false;
}
bool rows_identical(const Mat& a, const Mat& b, const std::vector<Index>& rows) {
  for (Index r : rows)
    for (Index j = 0; j < a.cols(); ++j)
      if (!(a(r, j) == b(r, j))) return false;
  return true;
}

// The input with every channel of batch b's token p (every pixel of image b) set to `value`.
Input poisoned(const Subject& s, Input in, Index b, Index p, float value) {
  if (s.kind == Kind::images) in.x.row(b).setConstant(value);
  else in.x.row(b * in.n + p).setConstant(value);
  return in;
}

std::vector<unsigned char> slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(f), {});
}

void spit(const std::string& path, const unsigned char* bytes, std::size_t size) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes), static_cast<std::streamsize>(size));
}

std::vector<unsigned char> safetensors_bytes(const std::string& header, std::size_t data_bytes) {
  std::vector<unsigned char> out(8 + header.size() + data_bytes, 0);
  const std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

std::vector<unsigned char> npy_bytes(const std::string& dict, std::size_t data_bytes) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  bytes.append(data_bytes, '\0');
  return std::vector<unsigned char>(bytes.begin(), bytes.end());
}

// A state dict with every value of tensor `key` replaced by `value`.
tokenmix::StateDict with_filled(const tokenmix::StateDict& dict, const std::string& key,
                                float value) {
  tokenmix::StateDict out;
  for (const auto& kv : dict) {
    if (kv.first != key) {
      out.insert(kv.first, kv.second);
      continue;
    }
    const std::vector<float> values(kv.second.numel(), value);
    out.insert(kv.first, tokenmix::Tensor::from_values<float>(kv.second.shape(), values.data()));
  }
  return out;
}

}  // namespace

TEST_CASE("hostile: wrong input width is a ShapeError", "[hostile]") {
  for (const Subject& s : subjects()) {
    if (s.kind == Kind::ids) continue;  // ids have no width; see the token-id rows
    DYNAMIC_SECTION(s.name) {
      for (Index width : {s.d_in - 1, s.d_in + 1}) {
        Input in = hostile::make_input(s, 2, s.n, 1);
        in.x = Mat::Ones(in.x.rows(), width);
        Mat y(s.out_rows(2, s.n), s.d_out);
        CHECK_THROWS_AS(s.forward(in, y), tokenmix::ShapeError);
      }
    }
  }
}

TEST_CASE("hostile: wrong output shape is a ShapeError", "[hostile]") {
  for (const Subject& s : subjects()) {
    if (!s.output_checked) continue;
    DYNAMIC_SECTION(s.name) {
      const Input in = hostile::make_input(s, 2, s.n, 2);
      const Index rows = s.out_rows(2, s.n);
      for (auto shape : {std::make_pair(rows + 1, s.d_out), std::make_pair(rows - 1, s.d_out),
                         std::make_pair(rows, s.d_out + 1)}) {
        Mat y(shape.first, shape.second);
        CHECK_THROWS_AS(s.forward(in, y), tokenmix::ShapeError);
      }
    }
  }
}

TEST_CASE("hostile: rows that are not a multiple of seq_len are a ShapeError", "[hostile]") {
  for (const Subject& s : subjects()) {
    if (s.kind != Kind::tokens || !s.uses_seq) continue;
    DYNAMIC_SECTION(s.name) {
      Input in = hostile::make_input(s, 2, s.n, 3);
      in.x.conservativeResize(2 * s.n + 1, Eigen::NoChange);
      in.x.row(2 * s.n).setOnes();
      Mat y(2 * s.n + 1, s.d_out);
      CHECK_THROWS_AS(s.forward(in, y), tokenmix::ShapeError);
    }
  }
}

TEST_CASE("hostile: seq_len 0 or negative is a ShapeError", "[hostile]") {
  for (const Subject& s : subjects()) {
    if (!s.uses_seq) continue;
    DYNAMIC_SECTION(s.name) {
      for (Index n : {Index(0), Index(-1)}) {
        if (s.kind == Kind::ids && n < 0) continue;  // ids' n is a matrix extent
        Input in = hostile::make_input(s, 2, s.n, 4);
        in.n = n;
        if (s.kind == Kind::ids) in.ids.resize(2, 0);
        Mat y(s.kind == Kind::ids ? s.out_rows(2, 0) : in.x.rows(), s.d_out);
        CHECK_THROWS_AS(s.forward(in, y), tokenmix::ShapeError);
      }
    }
  }
}

TEST_CASE("hostile: an empty batch is a no-op", "[hostile]") {
  for (const Subject& s : subjects()) {
    DYNAMIC_SECTION(s.name) {
      const Input in = hostile::make_input(s, 0, s.n, 5);
      Mat y(s.out_rows(0, s.n), s.d_out);
      CHECK(y.rows() == 0);
      CHECK_NOTHROW(s.forward(in, y));
    }
  }
}

TEST_CASE("hostile: one-token sequences are finite and independent of the batch", "[hostile]") {
  // Length-tied layers are rebuilt for N = 1; image models get a single patch.
  for (const Subject& s : subjects(1)) {
    DYNAMIC_SECTION(s.name) {
      const Input in = hostile::make_input(s, 3, 1, 6);
      const Mat y = hostile::run(s, in);
      CHECK_FALSE(any_of(y, not_finite));
      for (Index b = 0; b < 3; ++b) {
        Input one = hostile::make_input(s, 1, 1, 0);
        if (s.kind == Kind::ids) one.ids = in.ids.row(b);
        else if (s.kind == Kind::images) one.x = in.x.row(b);
        else one.x = in.x.row(b);
        const Mat y1 = hostile::run(s, one);
        const auto rows = hostile::output_rows_of(s, 3, 1, b);
        const auto rows1 = hostile::output_rows_of(s, 1, 1, 0);
        REQUIRE(rows.size() == rows1.size());
        for (std::size_t i = 0; i < rows.size(); ++i)
          for (Index j = 0; j < y.cols(); ++j)
            CHECK(y(rows[i], j) == Approx(y1(rows1[i], j)).epsilon(1e-5).margin(1e-6));
      }
    }
  }
}

TEST_CASE("hostile: sequences longer than a length-tied layer allows are a ShapeError",
          "[hostile]") {
  for (const Subject& s : subjects()) {
    if (s.max_len == 0) continue;
    DYNAMIC_SECTION(s.name) {
      for (Index n : {s.n + 1, 2 * s.n, Index(1) << 20}) {
        Input in = hostile::make_input(s, n > 1000 ? 0 : 2, n, 7);
        if (n > 1000) {  // only the declared length is huge: no data behind it
          in.batch = 1;
          if (s.kind == Kind::ids) in.ids.resize(1, 0);
          else in.x.resize(0, s.d_in);
        }
        Mat y(n > 1000 ? 0 : s.out_rows(2, n), s.d_out);
        CHECK_THROWS_AS(s.forward(in, y), tokenmix::Error);
      }
      // Shorter sequences are fine (the tied weights are cropped, as the reference does).
      for (Index n : {Index(1), s.n - 1}) {
        const Mat y = hostile::run(s, hostile::make_input(s, 2, n, 7));
        CHECK_FALSE(any_of(y, not_finite));
      }
    }
  }
}

// NaN / +Inf at one token of sequence 1 of 3: the other sequences are bit-identical to a
// clean run, the poisoned token's output row is non-finite (NaN for NaN), and a causal
// subject keeps the rows before the poisoned token clean.
TEST_CASE("hostile: NaN and Inf in inputs stay inside their sequence", "[hostile]") {
  for (const Subject& s : subjects()) {
    if (s.kind == Kind::ids) continue;
    DYNAMIC_SECTION(s.name) {
      const Index batch = 3, n = s.kind == Kind::images ? 1 : s.n, p = n / 2;
      const Input clean = hostile::make_input(s, batch, n, 8);
      const Mat y0 = hostile::run(s, clean);
      REQUIRE_FALSE(any_of(y0, not_finite));
      for (float bad : {kNaN, kInf, -kInf}) {
        if (bad < 0 && s.name.rfind("Softmax", 0) == 0) continue;  // -inf is a masked logit
        const Mat y = hostile::run(s, poisoned(s, clean, 1, p, bad));
        for (Index b : {Index(0), Index(2)})
          CHECK(rows_identical(y, y0, hostile::output_rows_of(s, batch, n, b)));
        if (s.kind == Kind::images) {
          bool hit = false;
          for (Index r : hostile::output_rows_of(s, batch, n, 1))
            hit = hit || row_has(y, r, std::isnan(bad) ? is_nan : not_finite);
          CHECK(hit);
        } else {
          CHECK(row_has(y, n + p, std::isnan(bad) ? is_nan : not_finite));
        }
      }
    }
  }
}

// Causality under NaN / Inf: output row i of a causal subject must not see token p > i, so
// the rows before the poisoned token stay bit-identical to a clean run.
void check_causal_rows(const Subject& s) {
  const Index batch = 2, n = s.n, p = n - 2;
  const Input clean = hostile::make_input(s, batch, n, 8);
  const Mat y0 = hostile::run(s, clean);
  for (float bad : {kNaN, kInf}) {
    INFO("token " << p << " of " << n << " set to " << bad);
    const Mat y = hostile::run(s, poisoned(s, clean, 1, p, bad));
    std::vector<Index> before;
    for (Index i = 0; i < p; ++i) before.push_back(n + i);
    CHECK(rows_identical(y, y0, before));
  }
}

TEST_CASE("hostile: causal subjects keep NaN and Inf out of earlier positions", "[hostile]") {
  for (const Subject& s : subjects())
    if (s.causal && s.kind == Kind::tokens) DYNAMIC_SECTION(s.name) { check_causal_rows(s); }
}

// Every parameter tensor in turn filled with NaN: no crash, and NaN reaches the output (n = N,
// so every parameter takes part). Filled with +Inf: no crash, and the output changes
// (saturating functions such as tanh may legitimately turn Inf into a finite value).
void check_poisoned_weights(const Subject& s) {
  const tokenmix::StateDict dict = s.save();
  REQUIRE(dict.size() > 0);
  const Input in = hostile::make_input(s, 2, s.n, 9);
  const Mat clean = hostile::run(s, in);
  for (const auto& kv : dict) {
    {
      INFO(kv.first << " filled with NaN");
      CHECK(any_of(hostile::run(*s.reload(with_filled(dict, kv.first, kNaN)), in), is_nan));
    }
    INFO(kv.first << " filled with +Inf");
    const Mat y = hostile::run(*s.reload(with_filled(dict, kv.first, kInf)), in);
    CHECK_FALSE(rows_identical(y, clean, hostile::output_rows_of(s, 2, s.n, 0)));
  }
}

TEST_CASE("hostile: NaN and Inf in weights propagate", "[hostile]") {
  for (const Subject& s : subjects())
    if (s.has_weights) DYNAMIC_SECTION(s.name) {
        check_poisoned_weights(s);
      }
}

// Inputs near float's range: where the exact result is finite (normalisation first, or
// sums far below 3.4e38) the output is finite. Dot-product attention on the raw input
// (q.k ~ 1e60) overflows in exact float arithmetic too, so those subjects are left out.
TEST_CASE("hostile: very large magnitudes stay finite where the math does", "[hostile]") {
  for (const Subject& s : subjects()) {
    if (s.kind == Kind::ids || s.name.rfind("SelfAttention", 0) == 0 ||
        s.name == "TinyAttention")
      continue;
    DYNAMIC_SECTION(s.name) {
      for (float scale : {1e30f, -1e30f}) {
        Input in = hostile::make_input(s, 2, s.n, 10);
        in.x *= scale;
        const Mat y = hostile::run(s, in);
        CHECK_FALSE(any_of(y, not_finite));
      }
    }
  }
}

// LayerNorm's variance used to overflow here and return the bias (fixed in bcf2d58).
TEMPLATE_TEST_CASE("hostile: LayerNorm and Softmax are exact at extreme magnitudes",
                   "[hostile]", float, double) {
  using T = TestType;
  const T big = std::is_same<T, float>::value ? T(1e30) : T(1e300);
  tokenmix::LayerNorm<T> norm({16, 1e-5});
  norm.init_random(3);
  tokenmix::Matrix<T> x(4, 16);
  tokenmix::Random rng(4);
  rng.fill_uniform(x, -1.0, 1.0);
  const tokenmix::Matrix<T> ref = norm.forward(x);
  for (T scale : {big, -big}) {
    INFO("scale " << scale);
    const tokenmix::Matrix<T> scaled = x * scale;
    const tokenmix::Matrix<T> y = norm.forward(scaled);
    // LayerNorm is scale-invariant (up to eps, negligible at this scale; a sign flip of x
    // flips the normalised value).
    const T sign = scale > 0 ? T(1) : T(-1);
    const tokenmix::Matrix<T> expected =
        ((ref.rowwise() - norm.bias.transpose()).array() * sign).matrix().rowwise() +
        norm.bias.transpose();
    for (Index i = 0; i < y.size(); ++i)
      CHECK(y.data()[i] == Approx(expected.data()[i]).epsilon(1e-4).margin(1e-4));
  }
  tokenmix::Softmax<T> softmax;
  for (T scale : {big, -big}) {
    const tokenmix::Matrix<T> p = softmax.forward(tokenmix::Matrix<T>(x * scale));
    for (Index r = 0; r < p.rows(); ++r) {
      CHECK(p.row(r).sum() == Approx(1.0));
      Index arg = 0;
      (x.row(r) * scale).maxCoeff(&arg);
      CHECK(p(r, arg) == Approx(1.0));
    }
  }
}

TEST_CASE("hostile: token ids out of range are an ArgumentError", "[hostile]") {
  for (const Subject& s : subjects()) {
    if (s.kind != Kind::ids) continue;
    DYNAMIC_SECTION(s.name) {
      for (std::int64_t id : {std::int64_t(-1), std::int64_t(s.d_in),
                              std::numeric_limits<std::int64_t>::max(),
                              std::numeric_limits<std::int64_t>::min()}) {
        Input in = hostile::make_input(s, 2, s.n, 11);
        in.ids(1, s.n - 1) = id;
        Mat y(s.out_rows(2, s.n), s.d_out);
        CHECK_THROWS_AS(s.forward(in, y), tokenmix::ArgumentError);
      }
    }
  }
  SECTION("FNet token types") {
    tokenmix::FNetConfig c;
    c.vocab_size = 13;
    c.hidden_size = 8;
    c.num_hidden_layers = 1;
    c.intermediate_size = 16;
    c.max_position_embeddings = 6;
    c.type_vocab_size = 2;
    tokenmix::FNet<float> fnet(c);
    fnet.init_random(5);
    const hostile::Ids ids = hostile::Ids::Ones(2, 4);
    for (std::int64_t t : {std::int64_t(-1), std::int64_t(2)}) {
      hostile::Ids types = hostile::Ids::Zero(2, 4);
      types(1, 3) = t;
      CHECK_THROWS_AS(fnet.forward(ids, types), tokenmix::ArgumentError);
    }
    CHECK_THROWS_AS(fnet.forward(ids, hostile::Ids::Zero(2, 3)), tokenmix::ShapeError);
  }
}

TEST_CASE("hostile: masks that hide every key, and masks of the wrong shape", "[hostile]") {
  tokenmix::SelfAttention<float> attn({8, 2, false});
  attn.init_random(12);
  Mat x(12, 8);
  tokenmix::Random(13).fill_uniform(x, -1.0, 1.0);
  tokenmix::BoolMatrix mask = tokenmix::BoolMatrix::Constant(2, 6, false);
  mask.row(1).setConstant(true);
  const Mat y = attn.forward(x, 6, mask);
  for (Index r = 0; r < 6; ++r) CHECK_FALSE(row_has(y, r, not_finite));
  for (Index r = 6; r < 12; ++r) CHECK(row_has(y, r, is_nan));  // documented: as PyTorch
  CHECK_THROWS_AS(attn.forward(x, 6, tokenmix::BoolMatrix::Constant(2, 5, false)),
                  tokenmix::ShapeError);
  CHECK_THROWS_AS(attn.forward(x, 6, tokenmix::BoolMatrix::Constant(3, 6, false)),
                  tokenmix::ShapeError);
  tokenmix::Softmax<float> softmax;
  Mat p(12, 8);
  CHECK_THROWS_AS(softmax.forward(x, 6, tokenmix::BoolMatrix::Constant(12, 7, false), p),
                  tokenmix::ShapeError);
  // A softmax row whose every entry is masked is NaN too, not a crash or a zero row.
  tokenmix::BoolMatrix all = tokenmix::BoolMatrix::Constant(12, 8, false);
  all.row(3).setConstant(true);
  softmax.forward(x, 6, all, p);
  CHECK(row_has(p, 3, is_nan));
  CHECK_FALSE(row_has(p, 2, not_finite));
}

// A checkpoint saved by one subject, loaded into each other one: a tokenmix::Error (a
// KeyError listing the keys) unless the two have the same names and shapes.
TEST_CASE("hostile: checkpoints for the wrong model are a KeyError", "[hostile]") {
  auto signature = [](const tokenmix::StateDict& d) {
    std::set<std::pair<std::string, std::vector<std::int64_t>>> sig;
    for (const auto& kv : d) sig.emplace(kv.first, kv.second.shape());
    return sig;
  };
  const auto& all = subjects();
  int pairs = 0;
  for (const Subject& from : all) {
    if (!from.has_weights) continue;
    const tokenmix::StateDict dict = from.save();
    for (const Subject& into : all) {
      if (!into.has_weights || &into == &from) continue;
      if (signature(dict) == signature(into.save())) continue;  // indistinguishable
      INFO(from.name << " -> " << into.name);
      CHECK_THROWS_AS(into.reload(dict), tokenmix::KeyError);
      ++pairs;
    }
  }
  CHECK(pairs > 500);
  // The same family for another sequence length: the length-tied tensors are mis-shaped.
  const auto& shorter = subjects(4);
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (!all[i].has_weights || all[i].max_len == 0) continue;
    INFO(all[i].name << " for n = 4 into n = 6");
    CHECK_THROWS_AS(all[i].reload(shorter[i].save()), tokenmix::KeyError);
  }
  // The right checkpoint with one key missing, or one extra.
  for (const Subject& s : all) {
    if (!s.has_weights) continue;
    INFO(s.name);
    const tokenmix::StateDict dict = s.save();
    tokenmix::StateDict missing = dict, extra = dict;
    missing.erase(dict.keys().front());
    extra.insert("unexpected.weight", dict.at(dict.keys().front()));
    CHECK_THROWS_AS(s.reload(missing), tokenmix::KeyError);
    CHECK_THROWS_AS(s.reload(extra), tokenmix::KeyError);
    CHECK_NOTHROW(s.reload(dict));
  }
}

TEST_CASE("hostile: huge declared sizes in files are rejected before allocating", "[hostile]") {
  struct Case {
    const char* what;
    std::vector<unsigned char> bytes;
    bool npy;
  };
  std::vector<Case> cases = {
      {"safetensors: 2^80 elements",
       safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1099511627776,1099511627776],)"
                         R"("data_offsets":[0,16]}})", 16), false},
      {"safetensors: 2^34 elements, offsets past the file",
       safetensors_bytes(R"({"w":{"dtype":"F32","shape":[17179869184],)"
                         R"("data_offsets":[0,68719476736]}})", 16), false},
      {"safetensors: offsets near 2^64",
       safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4],)"
                         R"("data_offsets":[18446744073709551600,18446744073709551615]}})", 16), false},
      {"safetensors: header length 2^62", {}, false},
      {"npy: 2^80 elements",
       npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                 "'shape': (1099511627776, 1099511627776), }", 16), true},
      {"npy: 2^40 elements, 16 bytes of data",
       npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }", 16),
       true},
      {"npy: shape past int64",
       npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                 "'shape': (99999999999999999999999,), }", 16), true},
  };
  cases[3].bytes = safetensors_bytes("{}", 0);
  const std::uint64_t huge = std::uint64_t(1) << 62;
  std::memcpy(cases[3].bytes.data(), &huge, 8);

  const std::string path = "hostile_huge.bin";
  for (const Case& c : cases) {
    INFO(c.what);
    hostile::start_counting();
    if (c.npy) CHECK_THROWS_AS(tokenmix::parse_npy(c.bytes.data(), c.bytes.size(), "mem"),
                               tokenmix::FormatError);
    else CHECK_THROWS_AS(tokenmix::parse_safetensors(c.bytes.data(), c.bytes.size(), "mem"),
                         tokenmix::FormatError);
    spit(path, c.bytes.data(), c.bytes.size());
    if (c.npy) CHECK_THROWS_AS(tokenmix::read_npy(path), tokenmix::FormatError);
    else CHECK_THROWS_AS(tokenmix::read_safetensors(path), tokenmix::FormatError);
    const hostile::AllocationStats stats = hostile::stop_counting();
    CHECK(stats.largest < (std::size_t(1) << 20));
  }
  std::remove(path.c_str());

  // A model config whose widths multiply past Index: refused (tokenmix::Error, or bad_alloc
  // from the allocator), never a wrapped-around small model.
  const char* configs[] = {
      R"({"embed_dim": 4294967296, "num_blocks": 1, "img_size": 32, "patch_size": 16})",
      R"({"embed_dim": 65536, "mlp_ratio": 1e12, "num_blocks": 1, "img_size": 32,
          "patch_size": 16})",
      R"({"num_blocks": 1000000000000, "embed_dim": 8, "img_size": 32, "patch_size": 16})",
  };
  for (const char* text : configs) {
    INFO(text);
    tokenmix::MlpMixerConfig c;
    std::ostringstream warnings;
    bool refused = false;
    try {
      tokenmix::apply_json(tokenmix::JsonConfig::parse(text, "config.json"), c, &warnings);
      tokenmix::MlpMixer<float> model(c);
    } catch (const tokenmix::Error&) {
      refused = true;
    } catch (const std::bad_alloc&) {
      refused = true;
    } catch (const std::length_error&) {
      refused = true;
    }
    CHECK(refused);
  }
}

TEST_CASE("hostile: truncated files are a FormatError at every length", "[hostile]") {
  const std::string data = TOKENMIX_TEST_DATA_DIR;
  std::vector<std::string> files = {data + "/io/all_dtypes.safetensors",
                                    data + "/io/npy_f4_v1.npy",  data + "/io/npy_f4_v2.npy",
                                    data + "/io/npy_f4_v3.npy",  data + "/io/npy_f8_fortran.npy",
                                    data + "/io/npy_f2_v1.npy",  data + "/io/npy_i8_v1.npy",
                                    data + "/io/npy_f8_scalar.npy", data + "/io/npy_i4_empty.npy",
                                    data + "/../fuzz/seeds/self_attention_d8.safetensors"};
  const std::string path = "hostile_truncated.bin";
  for (const std::string& f : files) {
    const std::vector<unsigned char> bytes = slurp(f);
    REQUIRE(bytes.size() > 16);
    const bool npy = f.size() > 4 && f.compare(f.size() - 4, 4, ".npy") == 0;
    INFO(f);
    CHECK_NOTHROW(npy ? (void)tokenmix::parse_npy(bytes.data(), bytes.size(), f)
                      : (void)tokenmix::parse_safetensors(bytes.data(), bytes.size(), f));
    const std::size_t step = std::max<std::size_t>(1, bytes.size() / 300);
    for (std::size_t len = 0; len < bytes.size(); len += (len < 128 ? 1 : step)) {
      INFO("first " << len << " of " << bytes.size() << " bytes");
      // A copy of exactly len bytes, so ASan sees any read past the end.
      const std::vector<unsigned char> cut(bytes.begin(), bytes.begin() + static_cast<long>(len));
      if (npy) CHECK_THROWS_AS(tokenmix::parse_npy(cut.data(), cut.size(), f), tokenmix::FormatError);
      else CHECK_THROWS_AS(tokenmix::parse_safetensors(cut.data(), cut.size(), f),
                           tokenmix::FormatError);
    }
    for (std::size_t len : {std::size_t(0), std::size_t(9), bytes.size() / 2, bytes.size() - 1}) {
      spit(path, bytes.data(), len);
      if (npy) CHECK_THROWS_AS(tokenmix::read_npy(path), tokenmix::IoError);
      else CHECK_THROWS_AS(tokenmix::read_safetensors(path), tokenmix::IoError);
    }
  }
  std::remove(path.c_str());
  CHECK_THROWS_AS(tokenmix::read_safetensors("hostile_no_such_file.safetensors"),
                  tokenmix::IoError);
  CHECK_THROWS_AS(tokenmix::read_npy("hostile_no_such_file.npy"), tokenmix::IoError);

  // JSON configs: every prefix that stops before the closing brace.
  const std::vector<unsigned char> json = slurp(data + "/../fuzz/seeds/config.json");
  const std::string text(json.begin(), json.end());
  const std::size_t close = text.rfind('}');
  REQUIRE(close != std::string::npos);
  for (std::size_t len = 0; len < close; ++len) {
    INFO("first " << len << " bytes of config.json");
    CHECK_THROWS_AS(tokenmix::JsonConfig::parse(text.substr(0, len), "config.json"),
                    tokenmix::FormatError);
  }
}

TEST_CASE("hostile: invalid configurations are an ArgumentError", "[hostile]") {
  using namespace tokenmix;
  CHECK_THROWS_AS(Linear<float>({0, 4}), ArgumentError);
  CHECK_THROWS_AS(Linear<float>({4, -1}), ArgumentError);
  CHECK_THROWS_AS(LayerNorm<float>({0, 1e-5}), ArgumentError);
  CHECK_THROWS_AS(LayerNorm<float>({4, -1.0}), ArgumentError);
  CHECK_THROWS_AS(Affine<float>(Index(0)), ArgumentError);
  CHECK_THROWS_AS(LayerScale<float>({-3, 1e-5}), ArgumentError);
  CHECK_THROWS_AS(FeedForward<float>({0, 4, 4, Activation::gelu_erf}), ArgumentError);
  CHECK_THROWS_AS(ExternalAttention<float>({8, 0, 1}), ArgumentError);
  CHECK_THROWS_AS(ExternalAttention<float>({8, 16, 3}), ArgumentError);
  CHECK_THROWS_AS(SelfAttention<float>({8, 3, false}), ArgumentError);
  CHECK_THROWS_AS(SelfAttention<float>({0, 1, false}), ArgumentError);
  CHECK_THROWS_AS(TinyAttention<float>({8, 4, 0, false}), ArgumentError);
  CHECK_THROWS_AS(SynthesizerDense<float>({0, 8, 1, false}), ArgumentError);
  CHECK_THROWS_AS(SynthesizerDense<float>({6, 8, 3, false}), ArgumentError);
  CHECK_THROWS_AS(SynthesizerRandom<float>({6, 8, 1, -1, false}), ArgumentError);
  CHECK_THROWS_AS(SynthesizerRandom<float>({6, 8, 0, 0, false}), ArgumentError);
  MLPMixerBlock<float>::Config mixer;
  mixer.seq_len = 0;
  mixer.channels = 8;
  CHECK_THROWS_AS(MLPMixerBlock<float>(mixer), ArgumentError);
  ResMLPBlock<float>::Config res;
  res.seq_len = 4;
  res.channels = -8;
  CHECK_THROWS_AS(ResMLPBlock<float>(res), ArgumentError);
  GMLPBlock<float>::Config gmlp;
  gmlp.seq_len = 4;
  gmlp.channels = 8;
  gmlp.hidden = 15;  // odd: the SGU splits it in halves
  CHECK_THROWS_AS(GMLPBlock<float>(gmlp), ArgumentError);
  SpatialGatingUnit<float>::Config sgu;
  sgu.seq_len = 4;
  sgu.channels = 7;
  CHECK_THROWS_AS(SpatialGatingUnit<float>(sgu), ArgumentError);
  PatchEmbed<float>::Config patch{3, 10, 10, 4, 8};  // 10 is not a multiple of 4
  CHECK_THROWS_AS(PatchEmbed<float>(patch), ArgumentError);
  FourierMixer<float>::Config fourier;
  fourier.threads = -1;
  CHECK_THROWS_AS(FourierMixer<float>(fourier), ArgumentError);
  MlpMixerConfig image;
  image.img_size = 30;
  image.patch_size = 16;
  CHECK_THROWS_AS(MlpMixer<float>(image), ArgumentError);
  image = MlpMixerConfig();
  image.embed_dim = 0;
  CHECK_THROWS_AS(MlpMixer<float>(image), ArgumentError);
  FNetConfig fnet;
  fnet.hidden_size = 0;
  CHECK_THROWS_AS(FNet<float>(fnet), ArgumentError);
  fnet = FNetConfig();
  fnet.hidden_act = "swish";
  CHECK_THROWS_AS(FNet<float>(fnet), ArgumentError);
  GMLPSequenceConfig seq;
  seq.num_tokens = 0;
  seq.dim = 8;
  seq.depth = 1;
  seq.seq_len = 4;
  CHECK_THROWS_AS(GMLPSequence<float>(seq), ArgumentError);
}
