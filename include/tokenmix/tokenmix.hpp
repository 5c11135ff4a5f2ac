#pragma once
// tokenmix: token-mixing neural-network layers (MLP-Mixer, gMLP, aMLP, FNet, External
// Attention, Synthesizer, ResMLP, self-attention) for C++17, header-only, on Eigen.
// Include this one header; the sections below list what it brings in.

#include "tokenmix/version.hpp"

// core: conventions, errors, threads, ISA dispatch, scratch memory
#include "tokenmix/core/error.hpp"
#include "tokenmix/core/isa.hpp"
#include "tokenmix/core/random.hpp"
#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/threads.hpp"
#include "tokenmix/core/workspace.hpp"
// core: GEMM

// core: FFT

// io: tensors, state dicts, file formats
#include "tokenmix/io/state_dict.hpp"
#include "tokenmix/io/tensor.hpp"

// layers

// models
