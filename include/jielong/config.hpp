// jielong configuration: version and the library-wide switches a host may set
// before including any jielong header.
#pragma once

#define JIELONG_VERSION_MAJOR 0
#define JIELONG_VERSION_MINOR 1
#define JIELONG_VERSION_PATCH 0
#define JIELONG_VERSION_STRING "0.1.0"

// Highway 1.0.3 (Debian 12) refuses to compile when the compiler's baseline is
// AVX3_DL (any -march with AVX-512 VNNI/VBMI2, e.g. -march=native on current
// Xeon/EPYC) unless that target is requested explicitly. Asking for it keeps
// both static and opt-in dynamic dispatch possible, so a host never meets
// the "best baseline should be included" error.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL 1
#endif

// Debug-only invariant checks. Input errors never use this: they return a Status.
#if defined(NDEBUG) && !defined(JIELONG_FORCE_ASSERT)
#define JIELONG_ASSERT(cond) ((void)0)
#else
#include <cstdio>
#include <cstdlib>
#define JIELONG_ASSERT(cond)                                                      \
  ((cond) ? (void)0                                                               \
          : (std::fprintf(stderr, "%s:%d: JIELONG_ASSERT(%s) failed\n", __FILE__, \
                          __LINE__, #cond),                                       \
             std::abort()))
#endif

#if defined(__GNUC__) || defined(__clang__)
#define JIELONG_LIKELY(x) __builtin_expect(!!(x), 1)
#define JIELONG_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define JIELONG_LIKELY(x) (x)
#define JIELONG_UNLIKELY(x) (x)
#endif
