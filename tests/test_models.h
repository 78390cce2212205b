// The surrogates the engine-level suites run with, loaded as every front end loads them.
#pragma once

#include "cloak/pipeline/surrogates.h"
#include "test_support.h"

namespace cloak::test {

// Both encoders from ../shared/models, on two threads.
inline SurrogateOptions test_surrogates() {
  SurrogateOptions o;
  o.models_dir = models_dir();
  o.names = {"taef2_encoder", "taesana_encoder"};
  o.threads = 2;
  return o;
}

}  // namespace cloak::test
