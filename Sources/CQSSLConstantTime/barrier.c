// The barrier is a static inline function in the header; this file only makes the target a
// C library that SwiftPM builds.
#include "CQSSLConstantTime.h"
