// Chat templates: role-tagged messages rendered into the prompt format a chat
// model was tuned on. Not a Jinja interpreter: the template is recognised
// from telltale substrings of `tokenizer.chat_template` (as llama.cpp's
// llm_chat_detect_template does, in the same order), or chosen by name, and
// each family's format is written out by hand below.
//
// Special tokens appear in the rendered text as their text ("<|im_start|>");
// encode the result with parse_special on. A leading BOS is not written:
// the tokenizer adds it.
#pragma once

#include <cctype>
#include <span>
#include <string>
#include <string_view>

#include "jielong/core/status.hpp"

namespace jielong::text {

enum class ChatTemplate {
  unknown,
  chatml,  // Qwen, many fine-tunes
  llama2,
  llama2_sys,
  llama2_sys_bos,
  llama2_sys_strip,
  mistral_v1,
  mistral_v3,
  mistral_v3_tekken,
  mistral_v7,
  mistral_v7_tekken,
  phi3,
  phi4,
  falcon3,
  zephyr,
  monarch,
  gemma,
  orion,
  openchat,
  vicuna,
  vicuna_orca,
  deepseek,
  deepseek2,
  deepseek3,
  command_r,
  llama3,
  chatglm3,
  chatglm4,
  glmedge,
  minicpm,
  exaone3,
  exaone4,
  granite,
  megrez,
  llama4,
  smolvlm,
};

// ChatML's Jinja source as Qwen's GGUFs spell it, for files that declare
// the format (tokenizer.chat_template); detected as chatml here and by llama.cpp.
inline constexpr std::string_view kChatmlJinja =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

struct ChatMessage {
  std::string_view role;  // "system", "user", "assistant" (others are passed through where the format allows)
  std::string_view content;
};

namespace detail {
struct ChatTemplateName {
  std::string_view name;
  ChatTemplate tmpl;
};
inline constexpr ChatTemplateName kChatTemplateNames[] = {
    {"chatml", ChatTemplate::chatml},
    {"llama2", ChatTemplate::llama2},
    {"llama2-sys", ChatTemplate::llama2_sys},
    {"llama2-sys-bos", ChatTemplate::llama2_sys_bos},
    {"llama2-sys-strip", ChatTemplate::llama2_sys_strip},
    {"mistral-v1", ChatTemplate::mistral_v1},
    {"mistral-v3", ChatTemplate::mistral_v3},
    {"mistral-v3-tekken", ChatTemplate::mistral_v3_tekken},
    {"mistral-v7", ChatTemplate::mistral_v7},
    {"mistral-v7-tekken", ChatTemplate::mistral_v7_tekken},
    {"phi3", ChatTemplate::phi3},
    {"phi4", ChatTemplate::phi4},
    {"falcon3", ChatTemplate::falcon3},
    {"zephyr", ChatTemplate::zephyr},
    {"monarch", ChatTemplate::monarch},
    {"gemma", ChatTemplate::gemma},
    {"orion", ChatTemplate::orion},
    {"openchat", ChatTemplate::openchat},
    {"vicuna", ChatTemplate::vicuna},
    {"vicuna-orca", ChatTemplate::vicuna_orca},
    {"deepseek", ChatTemplate::deepseek},
    {"deepseek2", ChatTemplate::deepseek2},
    {"deepseek3", ChatTemplate::deepseek3},
    {"command-r", ChatTemplate::command_r},
    {"llama3", ChatTemplate::llama3},
    {"chatglm3", ChatTemplate::chatglm3},
    {"chatglm4", ChatTemplate::chatglm4},
    {"glmedge", ChatTemplate::glmedge},
    {"minicpm", ChatTemplate::minicpm},
    {"exaone3", ChatTemplate::exaone3},
    {"exaone4", ChatTemplate::exaone4},
    {"granite", ChatTemplate::granite},
    {"megrez", ChatTemplate::megrez},
    {"llama4", ChatTemplate::llama4},
    {"smolvlm", ChatTemplate::smolvlm},
};

inline std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}
}  // namespace detail

// ChatTemplate::unknown when the name is not one of the list above.
inline ChatTemplate chat_template_from_name(std::string_view name) noexcept {
  for (const auto& n : detail::kChatTemplateNames)
    if (n.name == name) return n.tmpl;
  return ChatTemplate::unknown;
}

inline std::string_view chat_template_name(ChatTemplate t) noexcept {
  for (const auto& n : detail::kChatTemplateNames)
    if (n.tmpl == t) return n.name;
  return "unknown";
}

// Recognises a template from its name or from the Jinja source in
// tokenizer.chat_template. Families this library does not render come back
// as unknown (never as a look-alike).
inline ChatTemplate detect_chat_template(std::string_view tmpl) noexcept {
  if (ChatTemplate t = chat_template_from_name(tmpl); t != ChatTemplate::unknown) return t;
  auto has = [&](std::string_view s) { return tmpl.find(s) != std::string_view::npos; };
  using T = ChatTemplate;
  if (has("<|im_start|>")) {
    return has("<|im_sep|>") ? T::phi4 : has("<end_of_utterance>") ? T::smolvlm : T::chatml;
  }
  if (tmpl.substr(0, 7) == "mistral" || has("[INST]")) {
    if (has("[SYSTEM_PROMPT]")) return T::mistral_v7;
    if (has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]")) {
      if (has(" [INST]")) return T::mistral_v1;
      if (has("\"[INST]\"")) return T::mistral_v3_tekken;
      return T::mistral_v3;
    }
    if (has("content.strip()")) return T::llama2_sys_strip;
    if (has("bos_token + '[INST]")) return T::llama2_sys_bos;
    if (has("<<SYS>>")) return T::llama2_sys;
    return T::llama2;
  }
  if (has("<|assistant|>") && has("<|end|>")) return T::phi3;
  if (has("[gMASK]<sop>")) return T::chatglm4;
  if (has("<|assistant|>") && has("<|user|>")) return has("</s>") ? T::falcon3 : T::glmedge;
  if (has("<|{{ item['role'] }}|>") && has("<|begin_of_image|>")) return T::glmedge;
  if (has("<|user|>") && has("<|endoftext|>")) return T::zephyr;
  if (has("bos_token + message['role']")) return T::monarch;
  if (has("<start_of_turn>")) return T::gemma;
  if (has("'\\n\\nAssistant: ' + eos_token")) return T::orion;
  if (has("GPT4 Correct ")) return T::openchat;
  if (has("USER: ") && has("ASSISTANT: ")) return has("SYSTEM: ") ? T::vicuna_orca : T::vicuna;
  if (has("### Instruction:") && has("<|EOT|>")) return T::deepseek;
  if (has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>")) return T::command_r;
  if (has("<|start_header_id|>") && has("<|end_header_id|>")) return T::llama3;
  if (has("[gMASK]sop")) return T::chatglm3;
  if (has("<用户>")) return T::minicpm;
  if (has("'Assistant: ' + message['content'] + eos_token")) return T::deepseek2;
  if (has("<｜Assistant｜>") && has("<｜User｜>") && has("<｜end▁of▁sentence｜>")) return T::deepseek3;
  if (has("[|system|]") && has("[|assistant|]") && has("[|endofturn|]")) return has("[|tool|]") ? T::exaone4 : T::exaone3;
  if (has("rwkv-world") || has("{{- 'User: ' + message['content']|trim + '\\n\\n' -}}")) return T::unknown;
  if (has("<|start_of_role|>")) return T::granite;
  if (has("<|role_start|>")) return T::megrez;
  if (has("<|header_start|>") && has("<|header_end|>")) return T::llama4;
  return T::unknown;
}

// The prompt for `messages`; with add_generation_prompt, ends with the
// opening of an assistant turn (formats that always end there ignore it).
namespace detail {

// Formats that wrap every message the same way:
// lead, then per message before_role + role + after_role + content + after_content.
struct WrappedFormat {
  ChatTemplate tmpl;
  std::string_view lead, before_role, after_role, after_content, generation;
  bool trim_content;
};
inline constexpr WrappedFormat kWrappedFormats[] = {
    {ChatTemplate::chatml, "", "<|im_start|>", "\n", "<|im_end|>\n", "<|im_start|>assistant\n", false},
    {ChatTemplate::phi3, "", "<|", "|>\n", "<|end|>\n", "<|assistant|>\n", false},
    {ChatTemplate::phi4, "", "<|im_start|>", "<|im_sep|>", "<|im_end|>", "<|im_start|>assistant<|im_sep|>", false},
    {ChatTemplate::falcon3, "", "<|", "|>\n", "\n", "<|assistant|>\n", false},
    {ChatTemplate::zephyr, "", "<|", "|>\n", "<|endoftext|>\n", "<|assistant|>\n", false},
    {ChatTemplate::llama3, "", "<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>",
     "<|start_header_id|>assistant<|end_header_id|>\n\n", true},
    {ChatTemplate::chatglm3, "[gMASK]sop", "<|", "|>\n ", "", "<|assistant|>", false},
    {ChatTemplate::chatglm4, "[gMASK]<sop>", "<|", "|>\n", "", "<|assistant|>\n", false},
    {ChatTemplate::glmedge, "", "<|", "|>\n", "", "<|assistant|>", false},
    {ChatTemplate::megrez, "", "<|role_start|>", "<|role_end|>", "<|turn_end|>", "<|role_start|>assistant<|role_end|>",
     false},
    {ChatTemplate::llama4, "", "<|header_start|>", "<|header_end|>\n\n", "<|eot|>",
     "<|header_start|>assistant<|header_end|>\n\n", true},
};

// Formats with fixed text around each role's messages: lead, then per
// message the first turn whose role matches ("*": any role; a message no
// turn matches is left out).
struct RoleTurn {
  std::string_view role, before, after;
};
struct RoleFormat {
  ChatTemplate tmpl;
  std::string_view lead;
  RoleTurn turns[4];
  std::string_view generation;
  bool trim_content;
};
inline constexpr RoleFormat kRoleFormats[] = {
    {ChatTemplate::vicuna, "", {{"system", "", "\n\n"}, {"user", "USER: ", "\n"}, {"assistant", "ASSISTANT: ", "</s>\n"}},
     "ASSISTANT:", false},
    {ChatTemplate::vicuna_orca, "",
     {{"system", "SYSTEM: ", "\n"}, {"user", "USER: ", "\n"}, {"assistant", "ASSISTANT: ", "</s>\n"}}, "ASSISTANT:", false},
    {ChatTemplate::deepseek, "",
     {{"system", "", ""}, {"user", "### Instruction:\n", "\n"}, {"assistant", "### Response:\n", "\n<|EOT|>\n"}},
     "### Response:\n", false},
    {ChatTemplate::command_r, "",
     {{"system", "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>", "<|END_OF_TURN_TOKEN|>"},
      {"user", "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>", "<|END_OF_TURN_TOKEN|>"},
      {"assistant", "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>", "<|END_OF_TURN_TOKEN|>"}},
     "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>", true},
    {ChatTemplate::minicpm, "", {{"user", "<用户>", "<AI>"}, {"*", "", ""}}, "", true},
    {ChatTemplate::deepseek2, "",
     {{"system", "", "\n\n"}, {"user", "User: ", "\n\n"}, {"assistant", "Assistant: ", "<｜end▁of▁sentence｜>"}},
     "Assistant:", false},
    {ChatTemplate::deepseek3, "",
     {{"system", "", "\n\n"}, {"user", "<｜User｜>", ""}, {"assistant", "<｜Assistant｜>", "<｜end▁of▁sentence｜>"}},
     "<｜Assistant｜>", false},
    {ChatTemplate::exaone3, "",
     {{"system", "[|system|]", "[|endofturn|]\n"}, {"user", "[|user|]", "\n"}, {"assistant", "[|assistant|]", "[|endofturn|]\n"}},
     "[|assistant|]", true},
    {ChatTemplate::exaone4, "",
     {{"system", "[|system|]", "[|endofturn|]\n"},
      {"user", "[|user|]", "\n"},
      {"assistant", "[|assistant|]", "[|endofturn|]\n"},
      {"tool", "[|tool|]", "[|endofturn|]\n"}},
     "[|assistant|]", true},
    {ChatTemplate::smolvlm, "<|im_start|>",
     {{"system", "", "\n\n"}, {"user", "User: ", "<end_of_utterance>\n"}, {"*", "Assistant: ", "<end_of_utterance>\n"}},
     "Assistant:", false},
};

template <class... Parts>
void cat(std::string& s, Parts&&... parts) {
  (s.append(parts), ...);
}

inline void render_wrapped(const WrappedFormat& f, std::span<const ChatMessage> messages, bool add_generation_prompt,
                           std::string& s) {
  s.append(f.lead);
  for (const auto& m : messages)
    cat(s, f.before_role, m.role, f.after_role, f.trim_content ? trim(m.content) : std::string(m.content),
        f.after_content);
  if (add_generation_prompt) s.append(f.generation);
}

inline void render_by_role(const RoleFormat& f, std::span<const ChatMessage> messages, bool add_generation_prompt,
                           std::string& s) {
  s.append(f.lead);
  for (const auto& m : messages)
    for (const RoleTurn& t : f.turns) {
      if (t.role.empty()) break;
      if (t.role != "*" && t.role != m.role) continue;
      cat(s, t.before, f.trim_content ? trim(m.content) : std::string(m.content), t.after);
      break;
    }
  if (add_generation_prompt) s.append(f.generation);
}

inline void render_mistral_v7(ChatTemplate tmpl, std::span<const ChatMessage> messages, std::string& s) {
  const std::string_view sp = tmpl == ChatTemplate::mistral_v7 ? " " : "";
  for (const auto& m : messages) {
    if (m.role == "system") cat(s, "[SYSTEM_PROMPT]", sp, m.content, "[/SYSTEM_PROMPT]");
    else if (m.role == "user") cat(s, "[INST]", sp, m.content, "[/INST]");
    else cat(s, sp, m.content, "</s>");
  }
}

inline void render_mistral_v1_v3(ChatTemplate tmpl, std::span<const ChatMessage> messages, std::string& s) {
  using T = ChatTemplate;
  const std::string_view lead = tmpl == T::mistral_v1 ? " " : "";
  const std::string_view trail = tmpl == T::mistral_v3_tekken ? "" : " ";
  bool inside = false;
  for (const auto& m : messages) {
    if (!inside) {
      cat(s, lead, "[INST]", trail);
      inside = true;
    }
    if (m.role == "system") {
      cat(s, m.content, "\n\n");
    } else if (m.role == "user") {
      cat(s, m.content, lead, "[/INST]");
    } else {
      cat(s, trail, tmpl == T::mistral_v3 ? trim(m.content) : std::string(m.content), "</s>");
      inside = false;
    }
  }
}

inline void render_llama2(ChatTemplate tmpl, std::span<const ChatMessage> messages, std::string& s) {
  using T = ChatTemplate;
  const bool system = tmpl != T::llama2;
  const bool bos_inside = tmpl == T::llama2_sys_bos;
  const bool strip = tmpl == T::llama2_sys_strip;
  bool inside = true;  // the first [INST] comes without BOS: the tokenizer adds it
  cat(s, "[INST] ");
  for (const auto& m : messages) {
    const std::string content = strip ? trim(m.content) : std::string(m.content);
    if (!inside) {
      inside = true;
      cat(s, bos_inside ? "<s>[INST] " : "[INST] ");
    }
    if (m.role == "system") {
      if (system) cat(s, "<<SYS>>\n", content, "\n<</SYS>>\n\n");
      else cat(s, content, "\n");
    } else if (m.role == "user") {
      cat(s, content, " [/INST]");
    } else {
      cat(s, content, "</s>");
      inside = false;
    }
  }
}

// No system role: its text joins the next user turn.
inline void render_gemma(std::span<const ChatMessage> messages, bool add_generation_prompt, std::string& s) {
  std::string system;
  for (const auto& m : messages) {
    if (m.role == "system") {
      system += trim(m.content);
      continue;
    }
    const std::string_view role = m.role == "assistant" ? std::string_view("model") : m.role;
    cat(s, "<start_of_turn>", role, "\n");
    if (!system.empty() && role != "model") {
      cat(s, system, "\n\n");
      system.clear();
    }
    cat(s, trim(m.content), "<end_of_turn>\n");
  }
  if (add_generation_prompt) cat(s, "<start_of_turn>model\n");
}

inline void render_orion(std::span<const ChatMessage> messages, std::string& s) {
  std::string system;
  for (const auto& m : messages) {
    if (m.role == "system") {
      system.append(m.content);
    } else if (m.role == "user") {
      cat(s, "Human: ");
      if (!system.empty()) {
        cat(s, system, "\n\n");
        system.clear();
      }
      cat(s, m.content, "\n\nAssistant: </s>");
    } else {
      cat(s, m.content, "</s>");
    }
  }
}

inline void render_openchat(std::span<const ChatMessage> messages, bool add_generation_prompt, std::string& s) {
  for (const auto& m : messages) {
    if (m.role == "system") {
      cat(s, m.content, "<|end_of_turn|>");
    } else {
      std::string role(m.role);
      if (!role.empty()) role[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(role[0])));
      cat(s, "GPT4 Correct ", role, ": ", m.content, "<|end_of_turn|>");
    }
  }
  if (add_generation_prompt) cat(s, "GPT4 Correct Assistant:");
}

inline void render_monarch(std::span<const ChatMessage> messages, bool add_generation_prompt, std::string& s) {
  for (size_t i = 0; i < messages.size(); ++i)
    cat(s, i == 0 ? "" : "<s>", messages[i].role, "\n", messages[i].content, "</s>\n");
  if (add_generation_prompt) cat(s, "<s>assistant\n");
}

inline void render_granite(std::span<const ChatMessage> messages, bool add_generation_prompt, std::string& s) {
  for (const auto& m : messages) {
    cat(s, "<|start_of_role|>", m.role, "<|end_of_role|>");
    if (m.role == "assistant_tool_call") cat(s, "<|tool_call|>");
    cat(s, m.content, "<|end_of_text|>\n");
  }
  if (add_generation_prompt) cat(s, "<|start_of_role|>assistant<|end_of_role|>\n");
}

}  // namespace detail

inline Result<std::string> render_chat(ChatTemplate tmpl, std::span<const ChatMessage> messages,
                                       bool add_generation_prompt) {
  using T = ChatTemplate;
  if (tmpl == T::unknown) return make_error(Code::unsupported, "chat template not recognised");
  std::string s;
  for (const detail::WrappedFormat& f : detail::kWrappedFormats)
    if (f.tmpl == tmpl) {
      detail::render_wrapped(f, messages, add_generation_prompt, s);
      return s;
    }
  for (const detail::RoleFormat& f : detail::kRoleFormats)
    if (f.tmpl == tmpl) {
      detail::render_by_role(f, messages, add_generation_prompt, s);
      return s;
    }
  switch (tmpl) {
    case T::mistral_v7:
    case T::mistral_v7_tekken: detail::render_mistral_v7(tmpl, messages, s); break;
    case T::mistral_v1:
    case T::mistral_v3:
    case T::mistral_v3_tekken: detail::render_mistral_v1_v3(tmpl, messages, s); break;
    case T::llama2:
    case T::llama2_sys:
    case T::llama2_sys_bos:
    case T::llama2_sys_strip: detail::render_llama2(tmpl, messages, s); break;
    case T::gemma: detail::render_gemma(messages, add_generation_prompt, s); break;
    case T::orion: detail::render_orion(messages, s); break;
    case T::openchat: detail::render_openchat(messages, add_generation_prompt, s); break;
    case T::monarch: detail::render_monarch(messages, add_generation_prompt, s); break;
    case T::granite: detail::render_granite(messages, add_generation_prompt, s); break;
    default: break;  // the table formats above
  }
  return s;
}

}  // namespace jielong::text
