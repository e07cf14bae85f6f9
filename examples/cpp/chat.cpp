// chat.cpp — a chat loop over libadak with the C++ wrapper adak.hpp (installed with adak.h).
//
//   c++ -std=c++17 chat.cpp -o chat $(pkg-config --cflags --libs adak)
//   ./chat MODEL.gguf [max_tokens_per_reply] [system prompt] < questions.txt
//
// Reads one user message per line from stdin and streams the model's replies. Each turn renders
// the whole conversation with the model's own chat template (library-side, as transformers
// would, default system prompt included), keeps the tokens the session already holds and
// evaluates only the rest, so the KV cache carries over between turns. A model without a chat
// template gets each line as plain text.
#include <adak.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

int main(int argc, char **argv) {
    if (argc < 2) {
        std::cerr << "usage: " << argv[0] << " MODEL.gguf [max_tokens_per_reply] [system prompt] < messages\n";
        return 2;
    }
    int max_tokens = argc > 2 ? std::stoi(argv[2]) : 64;
    try {
        adak::check_version();
        adak::Model model(argv[1]);
        const bool templated = !model.get_string("chat_template").empty();
        std::cout << "model " << model.arch() << " \"" << model.name() << "\", "
                  << (templated ? "its chat template" : "plain text") << "\n";

        adak::Session session(model, 2048);
        adak_sampling_params sampling = session.sampling();
        sampling.temperature = 0.0f;
        session.set_sampling(sampling);
        std::vector<std::pair<std::string, std::string>> messages;
        if (argc > 3) messages.emplace_back("system", argv[3]);
        std::string line;
        while (std::getline(std::cin, line)) {
            if (line.empty()) continue;
            messages.emplace_back("user", line);
            auto held = session.tokens();
            std::vector<adak_token> ids = held;
            if (templated) {
                ids = model.tokenize(model.apply_chat_template(messages), /*add_special=*/false, /*parse_special=*/true);
            } else {
                auto more = model.tokenize(line + "\n", /*add_special=*/held.empty());
                ids.insert(ids.end(), more.begin(), more.end());
            }
            size_t common = std::mismatch(held.begin(), held.end(), ids.begin(), ids.end()).first - held.begin();
            common = std::min(common, ids.size() - 1);
            session.truncate(static_cast<int64_t>(common));
            std::cout << "> " << line << "\n";
            std::string reply;
            size_t n = session.generate(std::vector<adak_token>(ids.begin() + common, ids.end()), max_tokens,
                                        [&reply](adak_token, std::string_view piece) {
                                            reply.append(piece);
                                            std::cout.write(piece.data(), static_cast<std::streamsize>(piece.size()));
                                            std::cout.flush();
                                            return true;
                                        });
            messages.emplace_back("assistant", reply);
            std::cout << "\n[" << n << " tokens, evaluated " << ids.size() - common << " new prompt tokens, position "
                      << session.position() << ", stop reason " << session.stop_reason() << "]\n";
        }
    } catch (const adak::Error &e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
