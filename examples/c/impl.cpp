// The one C++ translation unit that compiles the C API's implementation.
#define JIELONG_IMPLEMENTATION
#include "jielong/jielong.h"
