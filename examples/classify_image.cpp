// Classify an image with a timm Mixer / gMLP / ResMLP / ViT checkpoint.
//
//   classify-image --model mixer_b16_224 --weights mixer_b16_224.safetensors
//                  --image cat.ppm [--labels imagenet_classes.txt] [--config cfg.json]
//
// Reads binary (P6) or ASCII (P3) PPM images, and PNG when built with TOKENMIX_HAVE_PNG
// (libpng). Preprocessing follows timm's eval transform: resize the shorter side to
// img_size / 0.875 (bilinear), centre crop img_size, scale to [0, 1], normalise with the
// model's mean / std (0.5 for Mixer, gMLP and ViT; ImageNet's for ResMLP). Prints the top-5
// classes with their softmax probabilities, named from the label file (one per line) if
// given.

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "tokenmix/io/json_config.hpp"
#include "tokenmix/io/safetensors.hpp"
#include "tokenmix/models/mlp_mixer.hpp"
#include "tokenmix/models/model_json.hpp"
#include "tokenmix/models/presets.hpp"

#ifdef TOKENMIX_HAVE_PNG
#include <png.h>
#endif

namespace {

using namespace tokenmix;

struct Image {
  int width = 0, height = 0;
  std::vector<float> rgb;  // height x width x 3, in [0, 1]
};

// PPM (netpbm P3 / P6): header tokens separated by whitespace, '#' comments.
Image read_ppm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::fail<IoError>(path, ": expected a readable image, got an open failure");
  auto token = [&]() {
    std::string t;
    char c;
    while (in.get(c)) {
      if (c == '#') {
        std::string rest;
        std::getline(in, rest);
        continue;
      }
      if (std::isspace(static_cast<unsigned char>(c))) {
        if (!t.empty()) break;
        continue;
      }
      t += c;
    }
    return t;
  };
  const std::string magic = token();
  if (magic != "P6" && magic != "P3")
    detail::fail<FormatError>(path, ": expected a PPM image (P6 or P3), got magic '", magic, "'");
  Image img;
  long maxval = 0;
  try {
    img.width = std::stoi(token());
    img.height = std::stoi(token());
    maxval = std::stol(token());
  } catch (const std::exception&) {
    detail::fail<FormatError>(path, ": expected width, height and maxval, got a malformed header");
  }
  if (img.width <= 0 || img.height <= 0 || img.width > 1 << 15 || img.height > 1 << 15 ||
      maxval <= 0 || maxval > 65535)
    detail::fail<FormatError>(path, ": expected sizes in 1..32768 and maxval in 1..65535, got ",
                              img.width, "x", img.height, " maxval ", maxval);
  const std::size_t count = static_cast<std::size_t>(img.width) * img.height * 3;
  img.rgb.resize(count);
  if (magic == "P6") {
    const std::size_t bytes = maxval < 256 ? 1 : 2;
    std::vector<unsigned char> raw(count * bytes);
    if (!in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size())))
      detail::fail<FormatError>(path, ": expected ", raw.size(), " bytes of pixels, got fewer");
    for (std::size_t i = 0; i < count; ++i) {
      const unsigned v = bytes == 1 ? raw[i] : (unsigned(raw[2 * i]) << 8) | raw[2 * i + 1];
      img.rgb[i] = static_cast<float>(v) / static_cast<float>(maxval);
    }
  } else {
    for (std::size_t i = 0; i < count; ++i) {
      const std::string t = token();
      if (t.empty()) detail::fail<FormatError>(path, ": expected ", count, " samples, got ", i);
      img.rgb[i] = static_cast<float>(std::stol(t)) / static_cast<float>(maxval);
    }
  }
  return img;
}

#ifdef TOKENMIX_HAVE_PNG
Image read_png(const std::string& path) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&png, path.c_str()))
    detail::fail<FormatError>(path, ": expected a PNG image, got: ", png.message);
  png.format = PNG_FORMAT_RGB;
  std::vector<unsigned char> raw(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, raw.data(), 0, nullptr))
    detail::fail<FormatError>(path, ": expected readable PNG pixels, got: ", png.message);
  Image img;
  img.width = static_cast<int>(png.width);
  img.height = static_cast<int>(png.height);
  img.rgb.resize(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) img.rgb[i] = raw[i] / 255.0f;
  return img;
}
#endif

Image read_image(const std::string& path) {
  const auto dot = path.find_last_of('.');
  const std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
  if (ext == "png" || ext == "PNG") {
#ifdef TOKENMIX_HAVE_PNG
    return read_png(path);
#else
    detail::fail<FormatError>(path, ": expected a PPM image (this build has no PNG support: "
                              "configure with libpng-dev), got .png");
#endif
  }
  return read_ppm(path);
}

// Bilinear sample with half-pixel centres (as torchvision's antialias-free resize).
float sample(const Image& img, float y, float x, int c) {
  y = std::clamp(y, 0.0f, static_cast<float>(img.height - 1));
  x = std::clamp(x, 0.0f, static_cast<float>(img.width - 1));
  const int y0 = static_cast<int>(y), x0 = static_cast<int>(x);
  const int y1 = std::min(y0 + 1, img.height - 1), x1 = std::min(x0 + 1, img.width - 1);
  const float fy = y - y0, fx = x - x0;
  auto at = [&](int yy, int xx) { return img.rgb[(static_cast<std::size_t>(yy) * img.width + xx) * 3 + c]; };
  return (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) +
         fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
}

// [3, size, size] planar, normalised.
std::vector<float> preprocess(const Image& img, Index size, const float mean[3], const float stdv[3]) {
  const float scale_size = std::floor(static_cast<float>(size) / 0.875f);
  const float s = scale_size / static_cast<float>(std::min(img.width, img.height));
  const float rw = img.width * s, rh = img.height * s;
  const float top = (rh - static_cast<float>(size)) / 2, left = (rw - static_cast<float>(size)) / 2;
  std::vector<float> out(static_cast<std::size_t>(3 * size * size));
  for (int c = 0; c < 3; ++c)
    for (Index i = 0; i < size; ++i)
      for (Index j = 0; j < size; ++j) {
        const float y = (top + static_cast<float>(i) + 0.5f) / s - 0.5f;
        const float x = (left + static_cast<float>(j) + 0.5f) / s - 0.5f;
        out[static_cast<std::size_t>((c * size + i) * size + j)] = (sample(img, y, x, c) - mean[c]) / stdv[c];
      }
  return out;
}

int usage() {
  std::cerr << "usage: classify-image --model <preset|mixer|gmlp|amlp|resmlp|vit> --weights "
               "W.safetensors --image IMG.ppm [--labels LABELS.txt] [--config CFG.json]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_name, weights, image, labels_path, config;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--model") model_name = argv[i + 1];
    else if (a == "--weights") weights = argv[i + 1];
    else if (a == "--image") image = argv[i + 1];
    else if (a == "--labels") labels_path = argv[i + 1];
    else if (a == "--config") config = argv[i + 1];
    else return usage();
  }
  if (argc % 2 == 0 || model_name.empty() || weights.empty() || image.empty()) return usage();
  try {
    MlpMixerConfig base;
    ModelFamily family;
    if (const ModelPreset* p = find_model_preset(model_name)) {
      base = p->image;
      family = p->family;
    } else if (auto f = parse_model_family(model_name)) {
      family = *f;
      base = image_family_defaults(family);
    } else {
      std::cerr << "classify-image: unknown model '" << model_name << "'\n";
      return 2;
    }
    if (family == ModelFamily::fnet) {
      std::cerr << "classify-image: expected an image model, got fnet\n";
      return 2;
    }
    const StateDict dict = read_safetensors(weights);
    MlpMixerConfig c = infer_mlp_mixer_config(dict, base);
    if (!config.empty()) apply_json(JsonConfig::read(config), c);
    MlpMixer<float> model(c);
    model.load(dict);

    const float half[3] = {0.5f, 0.5f, 0.5f};
    const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f}, imagenet_std[3] = {0.229f, 0.224f, 0.225f};
    const bool imagenet = family == ModelFamily::resmlp;
    const std::vector<float> x = preprocess(read_image(image), c.img_size,
                                            imagenet ? imagenet_mean : half,
                                            imagenet ? imagenet_std : half);
    const Matrix<float> logits =
        model.forward(ConstMatrixMap<float>(x.data(), 1, model.image_values(),
                                            Eigen::OuterStride<>(model.image_values())));

    std::vector<std::string> labels;
    if (!labels_path.empty()) {
      std::ifstream in(labels_path);
      if (!in) detail::fail<IoError>(labels_path, ": expected a readable label file, got an open failure");
      for (std::string line; std::getline(in, line);) labels.push_back(line);
    }
    const Index k = logits.cols();
    const float top = logits.maxCoeff();
    const double z = (logits.array() - top).exp().sum();
    std::vector<Index> order(static_cast<std::size_t>(k));
    std::iota(order.begin(), order.end(), Index(0));
    const std::size_t shown = std::min<std::size_t>(5, order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(shown), order.end(),
                      [&](Index a, Index b) { return logits(0, a) > logits(0, b); });
    for (std::size_t i = 0; i < shown; ++i) {
      const Index cls = order[i];
      const double p = std::exp(static_cast<double>(logits(0, cls) - top)) / z;
      std::cout << std::setw(2) << i + 1 << ". " << std::fixed << std::setprecision(4) << p
                << "  class " << cls;
      if (static_cast<std::size_t>(cls) < labels.size()) std::cout << "  " << labels[static_cast<std::size_t>(cls)];
      std::cout << '\n';
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "classify-image: error: " << e.what() << '\n';
    return 1;
  }
}
