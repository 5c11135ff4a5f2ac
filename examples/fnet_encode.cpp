// Encode a batch of token-id sequences with FNet and print the pooled vectors.
//
//   fnet-encode --weights fnet-base.safetensors [--config config.json] [--dims 8]
//               "65 1810 27 4" "65 22 9 4 3 3"
//
// Each quoted argument is one sequence of token ids (from the model's SentencePiece
// tokenizer, which is not part of tokenmix). FNet has no attention mask, so sequences are
// right-padded with pad_token_id to the longest one, as Hugging Face's tokenizer does with
// padding=True; the padded tokens take part in the Fourier mixing.

#include <algorithm>
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "tokenmix/io/json_config.hpp"
#include "tokenmix/io/safetensors.hpp"
#include "tokenmix/models/fnet.hpp"
#include "tokenmix/models/model_json.hpp"

int main(int argc, char** argv) {
  using namespace tokenmix;
  std::string weights, config;
  int dims = 8;
  std::vector<std::vector<std::int64_t>> sequences;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if ((a == "--weights" || a == "--config" || a == "--dims") && i + 1 < argc) {
        const std::string v = argv[++i];
        if (a == "--weights") weights = v;
        else if (a == "--config") config = v;
        else dims = std::max(1, std::stoi(v));
        continue;
      }
      std::istringstream in(a);
      std::vector<std::int64_t> ids;
      for (std::int64_t id; in >> id;) ids.push_back(id);
      if (!in.eof() || ids.empty()) throw std::invalid_argument("bad sequence '" + a + "'");
      sequences.push_back(ids);
    }
  } catch (const std::exception& e) {
    std::cerr << "fnet-encode: " << e.what() << '\n';
    sequences.clear();
  }
  if (weights.empty() || sequences.empty()) {
    std::cerr << "usage: fnet-encode --weights W.safetensors [--config config.json] [--dims N] "
                 "\"ids of sequence 1\" [\"ids of sequence 2\" ...]\n";
    return 2;
  }
  try {
    const StateDict dict = read_safetensors(weights);
    FNetConfig c = infer_fnet_config(dict);
    if (!config.empty()) apply_json(JsonConfig::read(config), c);
    c.mlm_head = false;  // only the encoder and pooler are needed
    FNet<float> model(c);
    ModelLoadOptions options;
    options.ignore_head = true;
    model.load(dict, options);

    std::size_t n = 0;
    for (const auto& s : sequences) n = std::max(n, s.size());
    Matrix<std::int64_t> ids = Matrix<std::int64_t>::Constant(
        static_cast<Index>(sequences.size()), static_cast<Index>(n), c.pad_token_id);
    for (std::size_t b = 0; b < sequences.size(); ++b)
      for (std::size_t i = 0; i < sequences[b].size(); ++i)
        ids(static_cast<Index>(b), static_cast<Index>(i)) = sequences[b][i];
    const auto out = model.forward(ids);
    if (out.pooled.size() == 0) detail::fail<KeyError>(weights, ": expected a pooler, got none");
    for (Index b = 0; b < out.pooled.rows(); ++b) {
      std::cout << "sequence " << b << " (" << sequences[static_cast<std::size_t>(b)].size()
                << " tokens): [";
      for (Index j = 0; j < std::min<Index>(dims, out.pooled.cols()); ++j)
        std::cout << (j ? ", " : "") << std::fixed << std::setprecision(5) << out.pooled(b, j);
      std::cout << (dims < out.pooled.cols() ? ", ...]" : "]") << '\n';
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "fnet-encode: error: " << e.what() << '\n';
    return 1;
  }
}
