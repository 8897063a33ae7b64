// jielong prepare-chat: instruction/answer pairs for tuning a chat model,
// derived from the Debian-packaged corpora the base model learnt from (read
// through train/clean.hpp's cleaners), written as JSON lines for
// `jielong train --data`:
//
//   WordNet   "What does X mean?" -> X's first definition (the gloss before
//             its quoted examples)
//   fortunes  "Tell me a fortune." (and a few other wordings) -> a fortune
//   Jargon    "What is X in hacker slang?" -> the entry's first sentences
//   Devil     "What does the Devil's Dictionary say about X?" -> the entry
//   NPCs      a shopkeeper, a guard and a quest giver, with a system prompt
//             naming who they are, from templates with varied names, items
//             and places
//
// A fixed set of common words (the most tagged lemmas of WordNet's sense
// counts, cntlist.rev, chosen by a hash of the word) is held out: no "What
// does X mean?" pair of theirs is in DIR/chat.jsonl, nor any pair whose
// answer is the same definition; their questions and reference definitions
// go to DIR/heldout.jsonl for `jielong chat-eval`. Everything is a function
// of the corpora and --seed.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "args.hpp"
#include "corpus_input.hpp"
#include "jielong/core/hash.hpp"
#include "jielong/sample/rng.hpp"
#include "jielong/train/clean.hpp"
#include "jielong/train/corpus.hpp"

namespace jielong::cli {

namespace chat_data {

inline std::string json_string(std::string_view s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      case '\r': o += "\\r"; break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          o += b;
        } else {
          o += static_cast<char>(c);
        }
    }
  }
  return o + "\"";
}

inline std::string pair_line(std::string_view system, std::string_view prompt, std::string_view answer) {
  std::string l = "{";
  if (!system.empty()) l += "\"system\": " + json_string(system) + ", ";
  return l + "\"prompt\": " + json_string(prompt) + ", \"answer\": " + json_string(answer) + "}";
}

// The documents of one file through its source's cleaner.
inline Result<std::vector<std::string>> documents(const std::string& path, train::SourceFormat format) {
  JIELONG_ASSIGN_OR_RETURN(std::string text, read_corpus_file(path));
  std::vector<std::string> raw, docs;
  train::split_documents(format, text, raw);
  for (const std::string& d : raw)
    if (std::string n = train::normalize_document(d); !n.empty() && !train::detail::has_offensive_word(n)) docs.push_back(std::move(n));
  return docs;
}

// Up to `sentences` sentences of a text, at most max_bytes (cut at a word).
inline std::string first_sentences(std::string_view s, size_t sentences, size_t max_bytes) {
  size_t end = 0;
  for (size_t n = 0; n < sentences;) {
    const size_t dot = s.find_first_of(".!?", end);
    if (dot == std::string_view::npos) {
      end = s.size();
      break;
    }
    end = dot + 1;
    if (end == s.size() || s[end] == ' ' || s[end] == '\n') ++n;
  }
  std::string out(s.substr(0, end));
  if (out.size() > max_bytes) {
    out.resize(max_bytes);
    if (const size_t sp = out.rfind(' '); sp != std::string::npos && sp > max_bytes / 2) out.resize(sp);
    out += "...";
  }
  return out;
}

inline uint64_t hash_of(std::string_view s, uint64_t seed) { return fnv1a(s.data(), s.size(), fnv1a(&seed, sizeof seed)); }

inline bool plain_word(std::string_view w) {
  if (w.size() < 2 || w.size() > 20) return false;
  return std::all_of(w.begin(), w.end(), [](char c) { return c >= 'a' && c <= 'z'; });
}

}  // namespace chat_data

inline int cmd_prepare_chat(Args& args) {
  std::string out_dir, wordnet = "/usr/share/wordnet", fortunes = "/usr/share/games/fortunes",
                       jargon = "/usr/share/doc/jargon-text/jargon.txt.gz", devil = "/usr/share/dictd/devil.dict.dz";
  int64_t seed = 0, heldout = 250, common = 2500, max_words = 12000, max_fortunes = 3000, npc = 1500;
  Flags flags("prepare-chat", "-o DIR [options]",
              "Instruction/answer pairs from WordNet, fortunes, the Jargon File, the Devil's Dictionary and NPC "
              "templates: DIR/chat.jsonl for training, DIR/heldout.jsonl (held-out common words) for chat-eval.");
  flags.add_string("-o,--out", &out_dir, "folder for chat.jsonl, heldout.jsonl and heldout-words.txt");
  flags.add_string("--wordnet", &wordnet, "WordNet's folder (data.*, cntlist.rev)");
  flags.add_string("--fortunes", &fortunes, "fortune files (a folder: its English files, not off/)");
  flags.add_string("--jargon", &jargon, "the Jargon File's text");
  flags.add_string("--devil", &devil, "the Devil's Dictionary (dictd)");
  flags.add_int("-s,--seed", &seed, "which words are held out and which templates are drawn", 0);
  flags.add_int("--heldout", &heldout, "common words held out for evaluation", 0, 100000);
  flags.add_int("--common", &common, "how many of WordNet's most tagged words count as common", 1, 1000000);
  flags.add_int("--max-words", &max_words, "\"What does X mean?\" pairs at most (the most tagged words first)", 0);
  flags.add_int("--max-fortunes", &max_fortunes, "fortune pairs at most", 0);
  flags.add_int("--npc", &npc, "NPC lines", 0, 1000000);
  if (auto rc = flags.parse(args)) return *rc;
  auto fail = [](const std::string& m) {
    std::fprintf(stderr, "jielong prepare-chat: %s\n", m.c_str());
    return 1;
  };
  if (out_dir.empty()) return fail("give the output folder with -o");
  namespace fs = std::filesystem;
  const uint64_t s = static_cast<uint64_t>(seed);
  std::vector<std::string> lines;  // chat.jsonl
  std::map<std::string, size_t> counts;

  // WordNet: each word's first definition (nouns first: data.noun, verb, adj, adv).
  std::unordered_map<std::string, std::string> definition;
  std::vector<std::string> word_order;
  for (const char* part : {"data.noun", "data.verb", "data.adj", "data.adv"}) {
    auto docs = chat_data::documents((fs::path(wordnet) / part).string(), train::SourceFormat::wordnet);
    if (!docs.ok()) return fail(docs.status().to_string());
    for (const std::string& d : *docs) {
      const size_t colon = d.find(": ");
      if (colon == std::string::npos) continue;
      std::string def = d.substr(colon + 2);
      def = def.substr(0, std::min(def.find("; \""), def.find(" \"")));
      while (!def.empty() && (def.back() == ' ' || def.back() == ';')) def.pop_back();
      if (def.size() < 8) continue;
      for (size_t b = 0; b < colon;) {
        size_t e = d.find(", ", b);
        if (e == std::string::npos || e > colon) e = colon;
        std::string w = d.substr(b, e - b);
        b = e + 2;
        for (char& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (chat_data::plain_word(w) && definition.emplace(w, def).second) word_order.push_back(w);
      }
    }
  }
  // How often each lemma was sense-tagged (cntlist.rev: "lemma%key sense count").
  std::unordered_map<std::string, uint64_t> tagged;
  {
    auto text = read_corpus_file((fs::path(wordnet) / "cntlist.rev").string());
    if (!text.ok()) return fail(text.status().to_string());
    for (size_t b = 0; b < text->size();) {
      size_t e = text->find('\n', b);
      if (e == std::string::npos) e = text->size();
      const std::string line = text->substr(b, e - b);
      b = e + 1;
      const size_t pct = line.find('%'), sp = line.rfind(' ');
      if (pct == std::string::npos || sp == std::string::npos) continue;
      tagged[line.substr(0, pct)] += std::strtoull(line.c_str() + sp + 1, nullptr, 10);
    }
  }
  std::vector<std::string> by_count = word_order;
  std::stable_sort(by_count.begin(), by_count.end(),
                   [&](const std::string& a, const std::string& b) { return tagged[a] > tagged[b]; });
  // Held out: among the common words, those of the smallest hashes.
  std::vector<std::string> pool(by_count.begin(), by_count.begin() + std::min<size_t>(common, by_count.size()));
  std::sort(pool.begin(), pool.end(), [&](const std::string& a, const std::string& b) {
    return chat_data::hash_of(a, s) < chat_data::hash_of(b, s);
  });
  pool.resize(std::min<size_t>(pool.size(), static_cast<size_t>(heldout)));
  std::sort(pool.begin(), pool.end());
  const std::set<std::string> held(pool.begin(), pool.end());
  std::unordered_set<std::string> held_defs;
  for (const std::string& w : held) held_defs.insert(definition[w]);

  static constexpr const char* kAsk[] = {"What does %s mean?", "What does \"%s\" mean?", "Define %s.",
                                         "What is the meaning of %s?"};
  size_t words = 0;
  for (const std::string& w : by_count) {
    if (words >= static_cast<size_t>(max_words)) break;
    if (held.count(w) || held_defs.count(definition[w])) continue;
    char q[128];
    std::snprintf(q, sizeof q, kAsk[chat_data::hash_of(w, s + 1) % 4], w.c_str());
    lines.push_back(chat_data::pair_line("", q, definition[w]));
    ++words;
  }
  counts["wordnet"] = words;

  // Fortunes: the English files of the folder (not off/, not the .u8 copies).
  {
    std::vector<std::string> files;
    std::error_code ec;
    if (fs::is_directory(fortunes, ec)) {
      for (const auto& e : fs::directory_iterator(fortunes, ec))
        if (e.is_regular_file() && !e.path().has_extension() && !looks_binary(e.path().string()))
          files.push_back(e.path().string());
    } else {
      files.push_back(fortunes);
    }
    std::sort(files.begin(), files.end());
    std::vector<std::string> all;
    for (const std::string& f : files) {
      auto docs = chat_data::documents(f, train::SourceFormat::fortune);
      if (!docs.ok()) return fail(docs.status().to_string());
      for (std::string& d : *docs)
        if (d.size() >= 20 && d.size() <= 300) all.push_back(std::move(d));
    }
    std::sort(all.begin(), all.end(), [&](const std::string& a, const std::string& b) {
      return chat_data::hash_of(a, s) < chat_data::hash_of(b, s);
    });
    all.resize(std::min<size_t>(all.size(), static_cast<size_t>(max_fortunes)));
    static constexpr const char* kTell[] = {"Tell me a fortune.", "Give me a fortune cookie.", "Say something wise.",
                                            "Tell me something funny."};
    for (const std::string& d : all) lines.push_back(chat_data::pair_line("", kTell[chat_data::hash_of(d, s + 2) % 4], d));
    counts["fortunes"] = all.size();
  }

  // Jargon File entries "headword: text" and the Devil's "WORD, n. text".
  {
    auto docs = chat_data::documents(jargon, train::SourceFormat::jargon);
    if (!docs.ok()) return fail(docs.status().to_string());
    size_t n = 0;
    for (const std::string& d : *docs) {
      const size_t colon = d.find(": ");
      if (colon == std::string::npos || colon > 40) continue;
      // The entry's text without its pronunciation "/gig/," and part of speech "n.".
      std::string_view rest = std::string_view(d).substr(colon + 2);
      auto skip_space = [&] {
        while (!rest.empty() && (rest[0] == ' ' || rest[0] == '\n' || rest[0] == ',')) rest.remove_prefix(1);
      };
      skip_space();
      if (!rest.empty() && rest[0] == '/')
        if (const size_t slash = rest.find('/', 1); slash != std::string_view::npos) rest.remove_prefix(slash + 1);
      for (int k = 0; k < 3; ++k) {  // "n.", "adj.", "vt.", ... possibly several
        skip_space();
        const size_t end = rest.find_first_of(" \n");
        if (end == std::string_view::npos || end > 5 || rest[end - 1] != '.' ) break;
        rest.remove_prefix(end);
      }
      skip_space();
      std::string body = chat_data::first_sentences(rest, 2, 300);
      std::replace(body.begin(), body.end(), '\n', ' ');
      if (body.size() < 20) continue;
      lines.push_back(chat_data::pair_line("", "What is " + d.substr(0, colon) + " in hacker slang?", body));
      ++n;
    }
    counts["jargon"] = n;
  }
  {
    auto docs = chat_data::documents(devil, train::SourceFormat::dictd);
    if (!docs.ok()) return fail(docs.status().to_string());
    size_t n = 0;
    for (const std::string& d : *docs) {
      const size_t comma = d.find(", ");
      if (comma == std::string::npos || comma > 30) continue;
      std::string word = d.substr(0, comma);
      for (char& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string body = chat_data::first_sentences(std::string_view(d).substr(comma + 2), 3, 400);
      if (body.size() < 20) continue;
      lines.push_back(chat_data::pair_line("", "What does the Devil's Dictionary say about " + word + "?", body));
      ++n;
    }
    counts["devil"] = n;
  }

  // NPC lines from templates.
  {
    static constexpr const char* kNames[] = {"Mara", "Tobin", "Elric", "Sela", "Bram", "Ilsa", "Dorn", "Wren",
                                             "Ansel", "Petra", "Cole", "Nessa", "Rurik", "Lio", "Hilde", "Fenn"};
    static constexpr const char* kPlaces[] = {"Oakvale", "the Iron Gate", "Riverford", "Stonehill", "the Salt Market",
                                              "Ashbury", "the North Road", "Greywater", "Thornwick", "the old mill"};
    static constexpr const char* kItems[] = {"sword", "shield", "healing potion", "lantern", "rope", "bow",
                                             "bread loaf", "map", "dagger", "cloak", "torch", "helmet"};
    static constexpr const char* kFoes[] = {"wolves", "bandits", "goblins", "a troll", "giant rats", "the bog witch"};
    auto pick = [&](auto& list, uint64_t i, uint64_t k) {
      return std::string(list[sample::Rng::draw(s + 10 + k, i) % std::size(list)]);
    };
    for (uint64_t i = 0; i < static_cast<uint64_t>(npc); ++i) {
      const std::string name = pick(kNames, i, 0), place = pick(kPlaces, i, 1), item = pick(kItems, i, 2),
                        foe = pick(kFoes, i, 3);
      const unsigned price = 2 + static_cast<unsigned>(sample::Rng::draw(s + 20, i) % 48);
      std::string system, prompt, answer;
      switch (i % 6) {
        case 0:
          system = "You are " + name + ", a shopkeeper in " + place + ".";
          prompt = "How much is the " + item + "?";
          answer = "The " + item + "? " + std::to_string(price) + " gold coins, friend. Best price in " + place + ".";
          break;
        case 1:
          system = "You are " + name + ", a shopkeeper in " + place + ".";
          prompt = "Hello! What do you sell?";
          answer = "Welcome to my shop! I sell a fine " + item + ", and much more. Take a look around.";
          break;
        case 2:
          system = "You are " + name + ", a guard at " + place + ".";
          prompt = "Can I pass?";
          answer = "Halt! No one enters " + place + " after dark. Come back in the morning, traveller.";
          break;
        case 3:
          system = "You are " + name + ", a guard at " + place + ".";
          prompt = "Is anything wrong?";
          answer = "Keep your eyes open. There are " + foe + " on the road to " + place + ".";
          break;
        case 4:
          system = "You are " + name + ", who gives quests in " + place + ".";
          prompt = "Do you have any work for me?";
          answer = "I do. " + std::string(1, static_cast<char>(std::toupper(static_cast<unsigned char>(foe[0])))) +
                   foe.substr(1) + " took my " + item + ". Bring it back and I will pay you " + std::to_string(price * 5) +
                   " gold.";
          break;
        default:
          system = "You are " + name + ", who gives quests in " + place + ".";
          prompt = "What is your name?";
          answer = "I am " + name + " of " + place + ". If you want work, ask me.";
          break;
      }
      lines.push_back(chat_data::pair_line(system, prompt, answer));
    }
    counts["npc"] = static_cast<size_t>(npc);
  }

  // A fixed shuffle so no source sits in one block of the file.
  std::sort(lines.begin(), lines.end(), [&](const std::string& a, const std::string& b) {
    return chat_data::hash_of(a, s + 3) < chat_data::hash_of(b, s + 3);
  });
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return fail(out_dir + ": cannot create: " + ec.message());
  auto write = [&](const std::string& name, const std::vector<std::string>& rows) {
    const std::string path = (fs::path(out_dir) / name).string();
    std::FILE* f = std::fopen(path.c_str(), "wb");
    bool ok = f != nullptr;
    for (size_t i = 0; ok && i < rows.size(); ++i) ok = std::fputs(rows[i].c_str(), f) >= 0 && std::fputc('\n', f) != EOF;
    if (f) ok = std::fclose(f) == 0 && ok;
    if (!ok) std::fprintf(stderr, "jielong prepare-chat: %s: write failed\n", path.c_str());
    return ok;
  };
  std::vector<std::string> held_lines, held_words(held.begin(), held.end());
  for (const std::string& w : held) held_lines.push_back(chat_data::pair_line("", "What does " + w + " mean?", definition[w]));
  if (!write("chat.jsonl", lines) || !write("heldout.jsonl", held_lines) || !write("heldout-words.txt", held_words))
    return 1;
  std::fprintf(stderr, "pairs: %zu (", lines.size());
  bool first = true;
  for (const auto& [k, v] : counts) std::fprintf(stderr, "%s%s %zu", first ? "" : ", ", k.c_str(), v), first = false;
  std::fprintf(stderr, "); held out: %zu common words of the %zu most tagged -> %s\n", held.size(),
               std::min<size_t>(common, by_count.size()), out_dir.c_str());
  return 0;
}

}  // namespace jielong::cli
