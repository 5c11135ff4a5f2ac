#pragma once
// tokenmix: token-mixing neural-network layers (MLP-Mixer, gMLP, aMLP, FNet, External
// Attention, Synthesizer, ResMLP, self-attention) for C++17, header-only, on Eigen.
// Include this one header; the sections below list what it brings in.

#include "tokenmix/version.hpp"

// core: conventions, errors, threads, ISA dispatch, scratch memory, random init
#include "tokenmix/core/error.hpp"
#include "tokenmix/core/isa.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/thread_pool.hpp"
#include "tokenmix/core/threads.hpp"
#include "tokenmix/core/workspace.hpp"
// core: GEMM
#include "tokenmix/core/gemm.hpp"
#include "tokenmix/core/packed_matrix.hpp"
// core: FFT
#include "tokenmix/core/fft.hpp"

// io: tensors, state dicts, file formats
#include "tokenmix/io/npy.hpp"
#include "tokenmix/io/safetensors.hpp"
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/io/tensor.hpp"
#include "tokenmix/io/json_config.hpp"

// layers: building blocks
#include "tokenmix/layers/activation.hpp"
#include "tokenmix/layers/affine.hpp"
#include "tokenmix/layers/feed_forward.hpp"
#include "tokenmix/layers/layer_norm.hpp"
#include "tokenmix/layers/layer_scale.hpp"
#include "tokenmix/layers/linear.hpp"
#include "tokenmix/layers/packed_weight.hpp"
#include "tokenmix/layers/patch_embed.hpp"
#include "tokenmix/layers/softmax.hpp"
// layers: token mixers and the blocks built from them
#include "tokenmix/layers/attention_kernel.hpp"
#include "tokenmix/layers/external_attention.hpp"
#include "tokenmix/layers/fourier_mixer.hpp"
#include "tokenmix/layers/gmlp_block.hpp"
#include "tokenmix/layers/mlp_mixer_block.hpp"
#include "tokenmix/layers/resmlp_block.hpp"
#include "tokenmix/layers/self_attention.hpp"
#include "tokenmix/layers/sequence_block.hpp"
#include "tokenmix/layers/spatial_gating_unit.hpp"
#include "tokenmix/layers/synthesizer_dense.hpp"
#include "tokenmix/layers/synthesizer_random.hpp"
#include "tokenmix/layers/tiny_attention.hpp"

// models
#include "tokenmix/models/fnet.hpp"
#include "tokenmix/models/fnet_layer.hpp"
#include "tokenmix/models/gmlp_sequence.hpp"
#include "tokenmix/models/mlp_mixer.hpp"
#include "tokenmix/models/model_json.hpp"
#include "tokenmix/models/presets.hpp"
#include "tokenmix/models/transformer_block.hpp"
