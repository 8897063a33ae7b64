// jielong: one include for the whole library.
#pragma once

#include "jielong/config.hpp"

#include "jielong/core/arena.hpp"
#include "jielong/core/dtype.hpp"
#include "jielong/core/executor.hpp"
#include "jielong/core/function_ref.hpp"
#include "jielong/core/half.hpp"
#include "jielong/core/mapped_file.hpp"
#include "jielong/core/quants.hpp"
#include "jielong/core/memory.hpp"
#include "jielong/core/status.hpp"
#include "jielong/core/tensor.hpp"

#include "jielong/kernels/kernels.hpp"
#include "jielong/io/gguf.hpp"
#include "jielong/io/gguf_writer.hpp"
#include "jielong/io/model_file.hpp"
#include "jielong/io/quantize.hpp"
#include "jielong/io/synth.hpp"
#include "jielong/model/hparams.hpp"
#include "jielong/model/memory_plan.hpp"
#include "jielong/model/model.hpp"
#include "jielong/model/transformer.hpp"
#include "jielong/run/eval.hpp"
#include "jielong/run/generate.hpp"
#include "jielong/run/load.hpp"
#include "jielong/run/session.hpp"
#include "jielong/sample/chain.hpp"

#include "jielong/text/gguf_vocab.hpp"
#include "jielong/text/text.hpp"
