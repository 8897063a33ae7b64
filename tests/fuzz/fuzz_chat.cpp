// Chat templates: recognising any template text, and rendering any messages
// (roles and contents from the input, NUL-separated) in every known format.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "jielong/text/chat_template.hpp"

using namespace jielong;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)text::detect_chat_template(input);
  (void)text::chat_template_from_name(input);
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= input.size(); ++i)
    if (i == input.size() || input[i] == '\0') {
      parts.push_back(input.substr(start, i - start));
      start = i + 1;
    }
  std::vector<text::ChatMessage> messages;
  for (size_t i = 0; i + 1 < parts.size(); i += 2) messages.push_back({parts[i], parts[i + 1]});
  for (int t = 0; t <= static_cast<int>(text::ChatTemplate::smolvlm) + 1; ++t) {  // every format, and one past
    (void)text::render_chat(static_cast<text::ChatTemplate>(t), messages, size & 1);
  }
  return 0;
}
