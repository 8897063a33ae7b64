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
inline Result<std::string> render_chat(ChatTemplate tmpl, std::span<const ChatMessage> messages,
                                       bool add_generation_prompt) {
  using T = ChatTemplate;
  using detail::trim;
  std::string s;
  auto cat = [&](auto&&... parts) { (s.append(parts), ...); };
  switch (tmpl) {
    case T::unknown: return make_error(Code::unsupported, "chat template not recognised");
    case T::chatml:
      for (const auto& m : messages) cat("<|im_start|>", m.role, "\n", m.content, "<|im_end|>\n");
      if (add_generation_prompt) cat("<|im_start|>assistant\n");
      break;
    case T::mistral_v7:
    case T::mistral_v7_tekken: {
      const std::string_view sp = tmpl == T::mistral_v7 ? " " : "";
      for (const auto& m : messages) {
        if (m.role == "system") cat("[SYSTEM_PROMPT]", sp, m.content, "[/SYSTEM_PROMPT]");
        else if (m.role == "user") cat("[INST]", sp, m.content, "[/INST]");
        else cat(sp, m.content, "</s>");
      }
      break;
    }
    case T::mistral_v1:
    case T::mistral_v3:
    case T::mistral_v3_tekken: {
      const std::string_view lead = tmpl == T::mistral_v1 ? " " : "";
      const std::string_view trail = tmpl == T::mistral_v3_tekken ? "" : " ";
      bool inside = false;
      for (const auto& m : messages) {
        if (!inside) {
          cat(lead, "[INST]", trail);
          inside = true;
        }
        if (m.role == "system") {
          cat(m.content, "\n\n");
        } else if (m.role == "user") {
          cat(m.content, lead, "[/INST]");
        } else {
          cat(trail, tmpl == T::mistral_v3 ? trim(m.content) : std::string(m.content), "</s>");
          inside = false;
        }
      }
      break;
    }
    case T::llama2:
    case T::llama2_sys:
    case T::llama2_sys_bos:
    case T::llama2_sys_strip: {
      const bool system = tmpl != T::llama2;
      const bool bos_inside = tmpl == T::llama2_sys_bos;
      const bool strip = tmpl == T::llama2_sys_strip;
      bool inside = true;  // the first [INST] comes without BOS: the tokenizer adds it
      cat("[INST] ");
      for (const auto& m : messages) {
        const std::string content = strip ? trim(m.content) : std::string(m.content);
        if (!inside) {
          inside = true;
          cat(bos_inside ? "<s>[INST] " : "[INST] ");
        }
        if (m.role == "system") {
          if (system) cat("<<SYS>>\n", content, "\n<</SYS>>\n\n");
          else cat(content, "\n");
        } else if (m.role == "user") {
          cat(content, " [/INST]");
        } else {
          cat(content, "</s>");
          inside = false;
        }
      }
      break;
    }
    case T::phi3:
      for (const auto& m : messages) cat("<|", m.role, "|>\n", m.content, "<|end|>\n");
      if (add_generation_prompt) cat("<|assistant|>\n");
      break;
    case T::phi4:
      for (const auto& m : messages) cat("<|im_start|>", m.role, "<|im_sep|>", m.content, "<|im_end|>");
      if (add_generation_prompt) cat("<|im_start|>assistant<|im_sep|>");
      break;
    case T::falcon3:
      for (const auto& m : messages) cat("<|", m.role, "|>\n", m.content, "\n");
      if (add_generation_prompt) cat("<|assistant|>\n");
      break;
    case T::zephyr:
      for (const auto& m : messages) cat("<|", m.role, "|>\n", m.content, "<|endoftext|>\n");
      if (add_generation_prompt) cat("<|assistant|>\n");
      break;
    case T::monarch:
      for (size_t i = 0; i < messages.size(); ++i)
        cat(i == 0 ? "" : "<s>", messages[i].role, "\n", messages[i].content, "</s>\n");
      if (add_generation_prompt) cat("<s>assistant\n");
      break;
    case T::gemma: {
      // No system role: its text joins the next user turn.
      std::string system;
      for (const auto& m : messages) {
        if (m.role == "system") {
          system += trim(m.content);
          continue;
        }
        const std::string_view role = m.role == "assistant" ? std::string_view("model") : m.role;
        cat("<start_of_turn>", role, "\n");
        if (!system.empty() && role != "model") {
          cat(system, "\n\n");
          system.clear();
        }
        cat(trim(m.content), "<end_of_turn>\n");
      }
      if (add_generation_prompt) cat("<start_of_turn>model\n");
      break;
    }
    case T::orion: {
      std::string system;
      for (const auto& m : messages) {
        if (m.role == "system") {
          system.append(m.content);
        } else if (m.role == "user") {
          cat("Human: ");
          if (!system.empty()) {
            cat(system, "\n\n");
            system.clear();
          }
          cat(m.content, "\n\nAssistant: </s>");
        } else {
          cat(m.content, "</s>");
        }
      }
      break;
    }
    case T::openchat:
      for (const auto& m : messages) {
        if (m.role == "system") {
          cat(m.content, "<|end_of_turn|>");
        } else {
          std::string role(m.role);
          if (!role.empty()) role[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(role[0])));
          cat("GPT4 Correct ", role, ": ", m.content, "<|end_of_turn|>");
        }
      }
      if (add_generation_prompt) cat("GPT4 Correct Assistant:");
      break;
    case T::vicuna:
    case T::vicuna_orca:
      for (const auto& m : messages) {
        if (m.role == "system") {
          if (tmpl == T::vicuna_orca) cat("SYSTEM: ", m.content, "\n");
          else cat(m.content, "\n\n");
        } else if (m.role == "user") {
          cat("USER: ", m.content, "\n");
        } else if (m.role == "assistant") {
          cat("ASSISTANT: ", m.content, "</s>\n");
        }
      }
      if (add_generation_prompt) cat("ASSISTANT:");
      break;
    case T::deepseek:
      for (const auto& m : messages) {
        if (m.role == "system") cat(m.content);
        else if (m.role == "user") cat("### Instruction:\n", m.content, "\n");
        else if (m.role == "assistant") cat("### Response:\n", m.content, "\n<|EOT|>\n");
      }
      if (add_generation_prompt) cat("### Response:\n");
      break;
    case T::command_r:
      for (const auto& m : messages) {
        if (m.role == "system") cat("<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>", trim(m.content), "<|END_OF_TURN_TOKEN|>");
        else if (m.role == "user") cat("<|START_OF_TURN_TOKEN|><|USER_TOKEN|>", trim(m.content), "<|END_OF_TURN_TOKEN|>");
        else if (m.role == "assistant")
          cat("<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>", trim(m.content), "<|END_OF_TURN_TOKEN|>");
      }
      if (add_generation_prompt) cat("<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>");
      break;
    case T::llama3:
      for (const auto& m : messages) cat("<|start_header_id|>", m.role, "<|end_header_id|>\n\n", trim(m.content), "<|eot_id|>");
      if (add_generation_prompt) cat("<|start_header_id|>assistant<|end_header_id|>\n\n");
      break;
    case T::chatglm3:
      cat("[gMASK]sop");
      for (const auto& m : messages) cat("<|", m.role, "|>\n ", m.content);
      if (add_generation_prompt) cat("<|assistant|>");
      break;
    case T::chatglm4:
      cat("[gMASK]<sop>");
      for (const auto& m : messages) cat("<|", m.role, "|>\n", m.content);
      if (add_generation_prompt) cat("<|assistant|>\n");
      break;
    case T::glmedge:
      for (const auto& m : messages) cat("<|", m.role, "|>\n", m.content);
      if (add_generation_prompt) cat("<|assistant|>");
      break;
    case T::minicpm:
      for (const auto& m : messages) {
        if (m.role == "user") cat("<用户>", trim(m.content), "<AI>");
        else cat(trim(m.content));
      }
      break;
    case T::deepseek2:
      for (const auto& m : messages) {
        if (m.role == "system") cat(m.content, "\n\n");
        else if (m.role == "user") cat("User: ", m.content, "\n\n");
        else if (m.role == "assistant") cat("Assistant: ", m.content, "<｜end▁of▁sentence｜>");
      }
      if (add_generation_prompt) cat("Assistant:");
      break;
    case T::deepseek3:
      for (const auto& m : messages) {
        if (m.role == "system") cat(m.content, "\n\n");
        else if (m.role == "user") cat("<｜User｜>", m.content);
        else if (m.role == "assistant") cat("<｜Assistant｜>", m.content, "<｜end▁of▁sentence｜>");
      }
      if (add_generation_prompt) cat("<｜Assistant｜>");
      break;
    case T::exaone3:
    case T::exaone4:
      for (const auto& m : messages) {
        if (m.role == "system") cat("[|system|]", trim(m.content), "[|endofturn|]\n");
        else if (m.role == "user") cat("[|user|]", trim(m.content), "\n");
        else if (m.role == "assistant") cat("[|assistant|]", trim(m.content), "[|endofturn|]\n");
        else if (m.role == "tool" && tmpl == T::exaone4) cat("[|tool|]", trim(m.content), "[|endofturn|]\n");
      }
      if (add_generation_prompt) cat("[|assistant|]");
      break;
    case T::granite:
      for (const auto& m : messages) {
        cat("<|start_of_role|>", m.role, "<|end_of_role|>");
        if (m.role == "assistant_tool_call") cat("<|tool_call|>");
        cat(m.content, "<|end_of_text|>\n");
      }
      if (add_generation_prompt) cat("<|start_of_role|>assistant<|end_of_role|>\n");
      break;
    case T::megrez:
      for (const auto& m : messages) cat("<|role_start|>", m.role, "<|role_end|>", m.content, "<|turn_end|>");
      if (add_generation_prompt) cat("<|role_start|>assistant<|role_end|>");
      break;
    case T::llama4:
      for (const auto& m : messages) cat("<|header_start|>", m.role, "<|header_end|>\n\n", trim(m.content), "<|eot|>");
      if (add_generation_prompt) cat("<|header_start|>assistant<|header_end|>\n\n");
      break;
    case T::smolvlm:
      cat("<|im_start|>");
      for (const auto& m : messages) {
        if (m.role == "system") cat(m.content, "\n\n");
        else if (m.role == "user") cat("User: ", m.content, "<end_of_utterance>\n");
        else cat("Assistant: ", m.content, "<end_of_utterance>\n");
      }
      if (add_generation_prompt) cat("Assistant:");
      break;
  }
  return s;
}

}  // namespace jielong::text
