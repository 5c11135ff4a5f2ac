// README "Build time": this consumer compiles the dispatched kernels once, here, and defines
// TOKENMIX_SEPARATE_KERNELS for its other files.
#include <tokenmix/instantiate_kernels.hpp>
