// Classify an image with a timm Mixer / gMLP / ResMLP / ViT checkpoint.
//
//   classify-image --model mixer_b16_224 --weights mixer_b16_224.safetensors
//                  --image cat.ppm [--labels imagenet_classes.txt] [--config cfg.json]
//
// Reads binary (P6) or ASCII (P3) PPM images, and PNG when built with TOKENMIX_HAVE_PNG
// (libpng). Preprocessing follows timm's eval transform: resize the shorter side to
// img_size / 0.875, centre crop img_size, scale to [0, 1], normalise with the model's
// mean / std (0.5 for Mixer, gMLP and ViT; ImageNet's for ResMLP). The resize is bilinear
// without antialiasing (torch's F.interpolate, which tests/reference/make_example_fixtures.py
// uses as the reference); timm's default pipeline resizes PIL images with bicubic
// antialiasing, so its probabilities differ slightly on downscaled photos. Prints the top-5
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

// timm's eval transform with bilinear interpolation and no antialiasing, exactly as
// torchvision's Resize(int) + CenterCrop on a tensor (F.interpolate, align_corners=False):
// the shorter side becomes floor(size / 0.875) and the longer one keeps the aspect ratio
// (truncated to an integer), each source coordinate is (dst + 0.5) * in / out - 0.5 clamped
// at 0, and the crop offsets are rounded half to even as Python's round() does. Result:
// [3, size, size] planar, normalised.
std::vector<float> preprocess(const Image& img, Index size, const float mean[3], const float stdv[3]) {
  const long resized_short = static_cast<long>(std::floor(static_cast<double>(size) / 0.875));
  const bool wide = img.width > img.height;
  const long short_side = wide ? img.height : img.width, long_side = wide ? img.width : img.height;
  const long resized_long = resized_short * long_side / short_side;
  const long out_h = wide ? resized_short : resized_long, out_w = wide ? resized_long : resized_short;
  const long top = static_cast<long>(std::nearbyint((out_h - size) / 2.0));
  const long left = static_cast<long>(std::nearbyint((out_w - size) / 2.0));
  const float scale_y = static_cast<float>(img.height) / static_cast<float>(out_h);
  const float scale_x = static_cast<float>(img.width) / static_cast<float>(out_w);

  struct Tap { int lo, hi; float frac; };
  auto taps = [](long dst, float scale, int extent) {
    const float src = std::max(0.0f, (static_cast<float>(dst) + 0.5f) * scale - 0.5f);
    const int lo = std::min(static_cast<int>(src), extent - 1);
    return Tap{lo, std::min(lo + 1, extent - 1), src - static_cast<float>(lo)};
  };
  auto at = [&](int y, int x, int c) {
    return img.rgb[(static_cast<std::size_t>(y) * static_cast<std::size_t>(img.width) +
                    static_cast<std::size_t>(x)) * 3 + static_cast<std::size_t>(c)];
  };
  std::vector<float> out(static_cast<std::size_t>(3 * size * size));
  for (Index i = 0; i < size; ++i) {
    const Tap ty = taps(top + i, scale_y, img.height);
    for (Index j = 0; j < size; ++j) {
      const Tap tx = taps(left + j, scale_x, img.width);
      for (int c = 0; c < 3; ++c) {
        const float v = (1 - ty.frac) * ((1 - tx.frac) * at(ty.lo, tx.lo, c) + tx.frac * at(ty.lo, tx.hi, c)) +
                        ty.frac * ((1 - tx.frac) * at(ty.hi, tx.lo, c) + tx.frac * at(ty.hi, tx.hi, c));
        out[static_cast<std::size_t>((c * size + i) * size + j)] = (v - mean[c]) / stdv[c];
      }
    }
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
    } else {
      std::cerr << "classify-image: unknown model '" << model_name << "'\n";
      return 2;
    }
    if (family == ModelFamily::fnet) {
      std::cerr << "classify-image: expected an image model, got fnet\n";
      return 2;
    }
    if (!find_model_preset(model_name)) base = image_family_defaults(family);
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
