// Chat templates. Expected prompts are written by hand from each family's
// published format (model cards / tokenizer_config.json templates).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "jielong/text/chat_template.hpp"

using namespace jielong::text;

namespace {
const std::vector<ChatMessage> kChat = {
    {"system", "You are helpful."},
    {"user", "Hi"},
    {"assistant", "Hello"},
    {"user", "How are you?"},
};

std::string render(ChatTemplate t, const std::vector<ChatMessage>& m, bool gen = true) {
  auto r = render_chat(t, m, gen);
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  return *r;
}
}  // namespace

TEST_CASE("chat: chatml (Qwen)") {
  CHECK(render(ChatTemplate::chatml, kChat) ==
        "<|im_start|>system\nYou are helpful.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello<|im_end|>\n"
        "<|im_start|>user\nHow are you?<|im_end|>\n"
        "<|im_start|>assistant\n");
  CHECK(render(ChatTemplate::chatml, {{"user", "Hi"}}, false) == "<|im_start|>user\nHi<|im_end|>\n");
}

TEST_CASE("chat: llama2 with a system prompt") {
  // BOS of the first turn is the tokenizer's; later turns open with <s>[INST]
  // only in the -bos variant.
  CHECK(render(ChatTemplate::llama2_sys, kChat) ==
        "[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST]Hello</s>[INST] How are you? [/INST]");
  CHECK(render(ChatTemplate::llama2_sys_bos, kChat) ==
        "[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST]Hello</s><s>[INST] How are you? [/INST]");
  // Plain llama2 has no <<SYS>> block: the system text leads the first turn.
  CHECK(render(ChatTemplate::llama2, kChat) == "[INST] You are helpful.\nHi [/INST]Hello</s>[INST] How are you? [/INST]");
  CHECK(render(ChatTemplate::llama2_sys_strip, {{"user", "  Hi \n"}}) == "[INST] Hi [/INST]");
}

TEST_CASE("chat: llama3") {
  CHECK(render(ChatTemplate::llama3, {{"system", "You are helpful."}, {"user", " Hi "}}) ==
        "<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST_CASE("chat: gemma folds the system prompt into the first user turn") {
  CHECK(render(ChatTemplate::gemma, kChat) ==
        "<start_of_turn>user\nYou are helpful.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello<end_of_turn>\n"
        "<start_of_turn>user\nHow are you?<end_of_turn>\n"
        "<start_of_turn>model\n");
}

TEST_CASE("chat: phi3 and zephyr") {
  CHECK(render(ChatTemplate::phi3, {{"system", "S"}, {"user", "Hi"}}) ==
        "<|system|>\nS<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n");
  CHECK(render(ChatTemplate::zephyr, {{"system", "S"}, {"user", "Hi"}}) ==
        "<|system|>\nS<|endoftext|>\n<|user|>\nHi<|endoftext|>\n<|assistant|>\n");
}

TEST_CASE("chat: mistral v1, v3, v3-tekken, v7") {
  CHECK(render(ChatTemplate::mistral_v1, kChat) ==
        " [INST] You are helpful.\n\nHi [/INST] Hello</s> [INST] How are you? [/INST]");
  CHECK(render(ChatTemplate::mistral_v3, kChat) == "[INST] You are helpful.\n\nHi[/INST] Hello</s>[INST] How are you?[/INST]");
  CHECK(render(ChatTemplate::mistral_v3_tekken, kChat) ==
        "[INST]You are helpful.\n\nHi[/INST]Hello</s>[INST]How are you?[/INST]");
  CHECK(render(ChatTemplate::mistral_v7, kChat) ==
        "[SYSTEM_PROMPT] You are helpful.[/SYSTEM_PROMPT][INST] Hi[/INST] Hello</s>[INST] How are you?[/INST]");
}

TEST_CASE("chat: detection from tokenizer.chat_template") {
  // Fragments of real templates, each with the telltale strings.
  CHECK(detect_chat_template("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                             "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}") == ChatTemplate::chatml);
  CHECK(detect_chat_template("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}") ==
        ChatTemplate::llama3);
  CHECK(detect_chat_template("{{ '<start_of_turn>' + role + '\\n' }}") == ChatTemplate::gemma);
  CHECK(detect_chat_template("{{ bos_token + '[INST] <<SYS>>\\n' + system_message }}") == ChatTemplate::llama2_sys_bos);
  CHECK(detect_chat_template("{{ '[INST] <<SYS>>\\n' + content }}") == ChatTemplate::llama2_sys);
  CHECK(detect_chat_template("{{ '[INST] ' + content + ' [/INST]' }}") == ChatTemplate::llama2);
  CHECK(detect_chat_template("{{ '[SYSTEM_PROMPT]' }}{{ '[INST]' }}") == ChatTemplate::mistral_v7);
  // phi-3's template as shipped in its GGUF.
  CHECK(detect_chat_template("{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' "
                             "+ '\\n' + message['content'] + '<|end|>' + '\\n' + '<|assistant|>' + '\\n'}}{% elif "
                             "(message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\\n'}}{% endif %}"
                             "{% endfor %}") == ChatTemplate::phi3);
  CHECK(detect_chat_template("{{ '<|user|>\\n' + content + '<|endoftext|>' }}") == ChatTemplate::zephyr);
  CHECK(detect_chat_template("{{ '<|im_start|>' + role + '<|im_sep|>' }}") == ChatTemplate::phi4);
  // Names choose directly.
  CHECK(detect_chat_template("gemma") == ChatTemplate::gemma);
  CHECK(chat_template_from_name("mistral-v7-tekken") == ChatTemplate::mistral_v7_tekken);
  CHECK(chat_template_name(ChatTemplate::llama3) == "llama3");
  // Unknown text and unknown names.
  CHECK(detect_chat_template("{{ messages }}") == ChatTemplate::unknown);
  CHECK(chat_template_from_name("no-such") == ChatTemplate::unknown);
  CHECK_FALSE(render_chat(ChatTemplate::unknown, kChat, true).ok());
}

TEST_CASE("chat: the constant ChatML template is detected as chatml") {
  CHECK(detect_chat_template(kChatmlJinja) == ChatTemplate::chatml);
}

// `jielong chat` keeps a conversation in the KV cache and prefills only what a
// new message adds: that needs every format to render a conversation as the
// render of its earlier turns followed by new text, never rewriting them.
TEST_CASE("chat: every format only appends when a turn is added") {
  const std::vector<ChatMessage> all = {
      {"system", "Be brief."}, {"user", "Hi"},   {"assistant", "Hello there"},
      {"user", "And you?"},    {"assistant", "Fine."}, {"user", "Bye"},
  };
  for (const auto& n : detail::kChatTemplateNames) {
    CAPTURE(n.name);
    // After each reply (the conversation so far, no generation prompt), the
    // next user message with the generation prompt.
    for (size_t end : {size_t{3}, size_t{5}}) {
      const std::vector<ChatMessage> before(all.begin(), all.begin() + static_cast<ptrdiff_t>(end));
      const std::vector<ChatMessage> after(all.begin(), all.begin() + static_cast<ptrdiff_t>(end + 1));
      const std::string held = render(n.tmpl, before, false);
      const std::string next = render(n.tmpl, after, true);
      CHECK(next.compare(0, held.size(), held) == 0);
      CHECK(next.size() > held.size());
    }
  }
}
