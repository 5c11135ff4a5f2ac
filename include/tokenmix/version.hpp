#pragma once

#define TOKENMIX_VERSION_MAJOR 0
#define TOKENMIX_VERSION_MINOR 1
#define TOKENMIX_VERSION_PATCH 0
#define TOKENMIX_VERSION_STRING "0.1.0"

namespace tokenmix {
inline constexpr int version_major = TOKENMIX_VERSION_MAJOR;
inline constexpr int version_minor = TOKENMIX_VERSION_MINOR;
inline constexpr int version_patch = TOKENMIX_VERSION_PATCH;
inline constexpr const char* version_string = TOKENMIX_VERSION_STRING;
}  // namespace tokenmix
